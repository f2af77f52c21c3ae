//! Validated names: projects, applications and clusters follow Kubernetes DNS-1123 label rules.

use std::fmt;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} name is empty")]
    Empty { what: &'static str },
    #[error("{what} name {name:?} is longer than {max} characters")]
    TooLong {
        what: &'static str,
        name: String,
        max: usize,
    },
    #[error(
        "{what} name {name:?} is invalid: use lower-case letters, digits and '-', starting and ending with a letter or digit"
    )]
    Invalid { what: &'static str, name: String },
}

/// Checks a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most `max` characters).
fn check_label(what: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            what,
            name: name.to_owned(),
            max,
        });
    }
    let bytes = name.as_bytes();
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = bytes.iter().all(|&c| ok_char(c) || c == b'-')
        && bytes.first().is_some_and(|&c| ok_char(c))
        && bytes.last().is_some_and(|&c| ok_char(c));
    if !valid {
        return Err(NameError::Invalid {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain: dot-separated labels, at most 253 characters.
fn check_subdomain(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.len() > 253 {
        return Err(NameError::TooLong {
            what,
            name: name.to_owned(),
            max: 253,
        });
    }
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    for label in name.split('.') {
        check_label(what, label, 63).map_err(|_| NameError::Invalid {
            what,
            name: name.to_owned(),
        })?;
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// Validates and wraps a name.
            pub fn parse(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(&name)?;
                Ok(Self(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A project name (DNS-1123 label, at most 63 characters).
    ProjectName,
    "project",
    |n| check_label("project", n, 63)
);
name_type!(
    /// A cluster name (DNS-1123 label, at most 63 characters).
    ClusterName,
    "cluster",
    |n| check_label("cluster", n, 63)
);
name_type!(
    /// An application name (DNS-1123 subdomain, as Kubernetes object names).
    AppName,
    "application",
    |n| check_subdomain("application", n)
);

/// An application's identity: names are unique per project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppRef {
    pub project: ProjectName,
    pub name: AppName,
}

impl AppRef {
    pub fn parse(project: &str, name: &str) -> Result<Self, NameError> {
        Ok(Self {
            project: ProjectName::parse(project)?,
            name: AppName::parse(name)?,
        })
    }

    /// Parses `project/name`; a bare `name` is in project `default`.
    pub fn parse_qualified(text: &str) -> Result<Self, NameError> {
        match text.split_once('/') {
            Some((project, name)) => Self::parse(project, name),
            None => Self::parse("default", text),
        }
    }
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.name)
    }
}

pub use self::AppName as ApplicationName;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        assert!(ClusterName::parse("cluster-1").is_ok());
        assert!(ProjectName::parse("a").is_ok());
        assert!(AppName::parse("cluster-3.nginx").is_ok());
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        let err = ClusterName::parse("Cluster_1").unwrap_err();
        assert!(err.to_string().contains("\"Cluster_1\""), "{err}");
        assert_eq!(
            ProjectName::parse(""),
            Err(NameError::Empty { what: "project" })
        );
        assert!(matches!(
            ClusterName::parse("-a"),
            Err(NameError::Invalid { .. })
        ));
        assert!(matches!(
            ClusterName::parse("a".repeat(64)),
            Err(NameError::TooLong { max: 63, .. })
        ));
        assert!(AppName::parse("a..b").is_err());
    }

    #[test]
    fn qualified_refs() {
        let r = AppRef::parse_qualified("team-a/nginx").unwrap();
        assert_eq!(r.to_string(), "team-a/nginx");
        let r = AppRef::parse_qualified("nginx").unwrap();
        assert_eq!(r.project.as_str(), "default");
        assert!(AppRef::parse_qualified("a/b/c").is_err());
    }
}
