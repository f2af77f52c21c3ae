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
    #[error(
        "application name {name:?} has the form name@cluster, which addresses an app created at an edge; an app defined at the hub is named by a DNS subdomain without '@'"
    )]
    EdgeForm { name: String },
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
    |n| if n.contains('@') {
        Err(NameError::EdgeForm { name: n.to_owned() })
    } else {
        check_subdomain("application", n)
    }
);

/// The separator between an edge app's local name and its cluster (`nginx@cluster-3`).
pub const EDGE_SEPARATOR: char = '@';

/// The name under which the hub knows an app created or generated at an edge:
/// `name@cluster` (`nginx@cluster-3`). `@` never appears in a hub app's name
/// (a DNS subdomain), so a hub app and an edge app never share a name, and
/// neither do two clusters' same-named edge apps.
pub fn edge_app_name(local: &str, cluster: &str) -> String {
    format!("{local}{EDGE_SEPARATOR}{cluster}")
}

/// Splits a name the hub knows into the app's name at its cluster and, for
/// an edge app (`nginx@cluster-3`), the cluster: `("nginx", Some("cluster-3"))`;
/// a hub app's name comes back whole, with `None`.
pub fn split_edge_app_name(name: &str) -> (&str, Option<&str>) {
    match name.split_once(EDGE_SEPARATOR) {
        Some((local, cluster)) => (local, Some(cluster)),
        None => (name, None),
    }
}

/// Checks an app's address: a hub app's name (a DNS subdomain) or an edge
/// app's `name@cluster` (a DNS subdomain, `@`, a cluster name).
fn check_address(name: &str) -> Result<(), NameError> {
    match split_edge_app_name(name) {
        (local, None) => check_subdomain("application", local),
        (local, Some(cluster)) => {
            check_subdomain("application", local).map_err(|_| NameError::Invalid {
                what: "application",
                name: name.to_owned(),
            })?;
            check_label("cluster", cluster, 63).map_err(|_| NameError::Invalid {
                what: "application",
                name: name.to_owned(),
            })
        }
    }
}

/// An application's identity: names are unique per project. `name` is a hub
/// app's name or an edge app's `name@cluster` ([`edge_app_name`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppRef {
    pub project: ProjectName,
    pub name: AppName,
}

impl AppRef {
    /// Parses an app's address: `name` is a hub app's name or an edge app's
    /// `name@cluster`. Use [`AppRef::parse_hub`] where an app is defined.
    pub fn parse(project: &str, name: &str) -> Result<Self, NameError> {
        check_address(name)?;
        Ok(Self {
            project: ProjectName::parse(project)?,
            name: AppName(name.to_owned()),
        })
    }

    /// Parses the identity of an app defined at the hub: `name@cluster` is refused.
    pub fn parse_hub(project: &str, name: &str) -> Result<Self, NameError> {
        Ok(Self {
            project: ProjectName::parse(project)?,
            name: AppName::parse(name)?,
        })
    }

    /// The cluster of an edge app (`nginx@cluster-3` → `cluster-3`); `None` for a hub app.
    pub fn edge_cluster(&self) -> Option<&str> {
        split_edge_app_name(self.name.as_str()).1
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
    fn edge_apps_are_named_with_their_cluster() {
        assert_eq!(edge_app_name("nginx", "cluster-3"), "nginx@cluster-3");
        assert_eq!(
            split_edge_app_name("nginx@cluster-3"),
            ("nginx", Some("cluster-3"))
        );
        assert_eq!(split_edge_app_name("nginx"), ("nginx", None));
        let edge = AppRef::parse("default", "nginx@cluster-3").unwrap();
        assert_eq!(edge.edge_cluster(), Some("cluster-3"));
        assert_eq!(edge.to_string(), "default/nginx@cluster-3");
        assert_eq!(
            AppRef::parse("default", "nginx").unwrap().edge_cluster(),
            None
        );
        let r = AppRef::parse_qualified("team-a/nginx@cluster-3").unwrap();
        assert_eq!(r.name.as_str(), "nginx@cluster-3");
        // A hub app may not take the edge form; the error says why.
        let err = AppRef::parse_hub("default", "nginx@cluster-3").unwrap_err();
        assert!(matches!(err, NameError::EdgeForm { .. }), "{err}");
        assert!(err.to_string().contains("name@cluster"), "{err}");
        assert!(AppName::parse("nginx@cluster-3").is_err());
        for bad in [
            "@cluster-3",
            "nginx@",
            "nginx@Cluster",
            "a@b@c",
            "Nginx@c",
            "nginx@c.d",
        ] {
            assert!(AppRef::parse("default", bad).is_err(), "{bad}");
        }
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
