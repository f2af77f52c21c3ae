//! Chart dependencies (pure): `dependencies:` of `Chart.yaml` and the versions `Chart.lock` pins, what is vendored in `charts/`, and where each missing dependency comes from (a chart repository or an `oci://` registry, a `file://` directory; repository names refused).

use crate::package::ChartFiles;
use crate::repo::{ChartVersion, resolve_version};

/// One `dependencies:` entry of `Chart.yaml` (or of `Chart.lock`, where `version` is exact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The chart's name (not its alias).
    pub name: String,
    /// A version or a semver range; empty is any.
    pub version: String,
    /// `https://…`, `http://…`, `file://…`, `oci://…`, `@name`, `alias:name`, or empty (vendored only).
    pub repository: String,
}

/// A chart's dependencies, its lock and what it vendors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartDependencies {
    pub dependencies: Vec<Dependency>,
    /// `Chart.lock`'s entries, when the chart has one.
    pub lock: Option<Vec<Dependency>>,
    /// Chart names of the directories in `charts/`.
    pub vendored_dirs: Vec<String>,
    /// File names of the archives in `charts/`.
    pub vendored_archives: Vec<String>,
}

/// Where a missing dependency is had from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A chart repository (`https://`, `http://`) or an OCI registry (`oci://`), and the version to ask it for
    /// (exact when locked).
    Repository { url: String, wanted: String },
    /// A directory relative to the chart (`file://` stripped).
    Directory { path: String },
}

/// A dependency to add to a scratch copy's `charts/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub dependency: Dependency,
    pub origin: Origin,
}

/// Why the dependencies cannot be had; `dependency` is empty for the chart's own metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyError {
    pub dependency: String,
    pub message: String,
}

impl ChartDependencies {
    /// Parses the files of a chart (no `Chart.yaml`: no dependencies, which helm reports in its own words).
    pub fn parse(files: &ChartFiles, max: usize) -> Result<Self, DependencyError> {
        let meta = |message: String| DependencyError {
            dependency: String::new(),
            message,
        };
        let dependencies = match &files.chart_yaml {
            Some(text) => entries(text, "Chart.yaml", max).map_err(meta)?,
            None => Vec::new(),
        };
        let lock = match &files.chart_lock {
            Some(text) => Some(entries(text, "Chart.lock", max).map_err(meta)?),
            None => None,
        };
        Ok(Self {
            dependencies,
            lock,
            vendored_dirs: files.vendored_dirs.clone(),
            vendored_archives: files.vendored_archives.clone(),
        })
    }

    /// Whether `name` is vendored: a directory of `charts/` whose `Chart.yaml` names it, or an archive
    /// `charts/<name>-<version>.tgz`.
    pub fn is_vendored(&self, name: &str) -> bool {
        self.vendored_dirs.iter().any(|d| d == name)
            || self.vendored_archives.iter().any(|file| {
                file.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| {
                        rest.starts_with(|c: char| c.is_ascii_digit()) && rest.ends_with(".tgz")
                    })
            })
    }

    /// The dependencies that are not vendored and where each comes from; at most `max_dependencies`
    /// declared. With a `Chart.lock`, a repository dependency is fetched at the version the lock pins (which
    /// must be listed for the same repository and accepted by `Chart.yaml`'s constraint).
    pub fn missing(&self, max_dependencies: usize) -> Result<Vec<Missing>, DependencyError> {
        if self.dependencies.len() > max_dependencies {
            return Err(DependencyError {
                dependency: String::new(),
                message: format!(
                    "Chart.yaml declares {} dependencies; at most {max_dependencies} are accepted",
                    self.dependencies.len()
                ),
            });
        }
        let mut out = Vec::new();
        for dependency in &self.dependencies {
            if self.is_vendored(&dependency.name) {
                continue;
            }
            let fail = |message: String| DependencyError {
                dependency: dependency.name.clone(),
                message,
            };
            edgecd_core::app::check_chart_name(&dependency.name).map_err(fail)?;
            let repository = dependency.repository.trim();
            let lower = repository
                .get(..8)
                .unwrap_or(repository)
                .to_ascii_lowercase();
            let origin = if repository.is_empty() {
                // Not vendored and nowhere to fetch it from: helm says so when it renders.
                continue;
            } else if lower.starts_with("https://")
                || lower.starts_with("http://")
                || crate::oci::is_oci(repository)
            {
                check_repository_url(repository).map_err(fail)?;
                Origin::Repository {
                    url: repository.to_owned(),
                    wanted: self.locked_version(dependency).map_err(fail)?,
                }
            } else if let Some(path) = repository.strip_prefix("file://") {
                Origin::Directory {
                    path: path.to_owned(),
                }
            } else if repository.starts_with('@') || lower.starts_with("alias:") {
                return Err(fail(format!(
                    "repository {repository:?}: repository names are not supported yet (there is no repositories.yaml); write the repository's https:// URL"
                )));
            } else {
                return Err(fail(format!(
                    "repository {}: not a chart repository (expected https://, http://, oci:// or file://)",
                    redacted(repository)
                )));
            };
            out.push(Missing {
                dependency: dependency.clone(),
                origin,
            });
        }
        Ok(out)
    }

    /// The version to fetch: the lock's, when there is a lock, else `Chart.yaml`'s constraint.
    fn locked_version(&self, dependency: &Dependency) -> Result<String, String> {
        let Some(lock) = &self.lock else {
            return Ok(dependency.version.clone());
        };
        let same_repo =
            |a: &str, b: &str| a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/');
        let locked = lock
            .iter()
            .find(|l| l.name == dependency.name && same_repo(&l.repository, &dependency.repository))
            .ok_or_else(|| {
                format!(
                    "Chart.lock lists no version from {}; it is out of sync with Chart.yaml (run helm dependency update)",
                    redacted(&dependency.repository)
                )
            })?;
        if !accepts(&dependency.version, &locked.version) {
            return Err(format!(
                "Chart.lock pins {}, which Chart.yaml's {:?} does not accept; it is out of sync with Chart.yaml (run helm dependency update)",
                locked.version, dependency.version
            ));
        }
        Ok(locked.version.clone())
    }
}

/// Whether the constraint `wanted` (empty: any) accepts `version`.
pub fn accepts(wanted: &str, version: &str) -> bool {
    wanted.trim().is_empty()
        || resolve_version(
            &[ChartVersion {
                version: version.to_owned(),
                urls: Vec::new(),
                digest: None,
            }],
            wanted,
        )
        .is_some()
}

/// `version:` of a `Chart.yaml` text.
pub fn chart_version(text: &str, max: usize) -> Result<String, String> {
    let doc = load(text, "Chart.yaml", max)?;
    doc.get("version")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "Chart.yaml has no version".to_owned())
}

fn load(text: &str, what: &str, max: usize) -> Result<serde_json::Value, String> {
    let budget = edgecd_render::yaml::Budget::new(max as u64);
    edgecd_render::yaml::load_one_within(text, &budget).map_err(|e| format!("{what}: {e}"))
}

/// The `dependencies:` list of a `Chart.yaml` or `Chart.lock`.
fn entries(text: &str, what: &str, max: usize) -> Result<Vec<Dependency>, String> {
    let doc = load(text, what, max)?;
    let Some(list) = doc.get("dependencies").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| format!("{what}: dependencies is not a list"))?;
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let field = |key: &str| match entry.get(key) {
                None | Some(serde_json::Value::Null) => Ok(String::new()),
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                Some(_) => Err(format!("{what}: dependencies[{i}].{key} is not a string")),
            };
            let name = field("name")?;
            if name.is_empty() {
                return Err(format!("{what}: dependencies[{i}] has no name"));
            }
            Ok(Dependency {
                name,
                version: field("version")?,
                repository: field("repository")?,
            })
        })
        .collect()
}

/// A dependency's chart repository URL: no credentials in it, a host.
fn check_repository_url(url: &str) -> Result<(), String> {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "repository {}: credentials in the URL are not used; store them as repository credentials",
            redacted(url)
        ));
    }
    if authority.is_empty() || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("repository {}: not a URL", redacted(url)));
    }
    Ok(())
}

/// A URL for messages: user information dropped, at most 200 characters, quoted.
pub fn redacted(url: &str) -> String {
    let text = match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    };
    let head: String = text.chars().take(200).collect();
    if head.len() < text.len() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MAX: usize = 1 << 20;

    fn chart(yaml: &str, lock: Option<&str>) -> ChartDependencies {
        ChartDependencies::parse(
            &ChartFiles {
                chart_yaml: Some(yaml.to_owned()),
                chart_lock: lock.map(str::to_owned),
                vendored_dirs: vec!["extras".into()],
                vendored_archives: vec!["cache-2.0.0.tgz".into(), "web-extras-1.0.tgz".into()],
            },
            MAX,
        )
        .unwrap()
    }

    const PARENT: &str = "apiVersion: v2\nname: parent\nversion: 1.0.0\ndependencies:\n- name: lib\n  version: ^1.0.0\n  repository: https://charts.example/stable/\n  alias: library\n  condition: lib.enabled\n- name: common\n  version: 0.1.0\n  repository: file://../common\n- name: extras\n  version: 0.1.0\n- name: cache\n  version: 2.0.0\n  repository: oci://registry.example/charts\n";

    #[test]
    fn missing_dependencies_come_from_their_repositories() {
        let deps = chart(PARENT, None);
        assert!(deps.is_vendored("cache") && deps.is_vendored("extras"));
        assert!(
            !deps.is_vendored("web"),
            "web-extras-1.0.tgz is another chart"
        );
        let missing = deps.missing(64).unwrap();
        assert_eq!(
            missing.iter().map(|m| m.origin.clone()).collect::<Vec<_>>(),
            [
                Origin::Repository {
                    url: "https://charts.example/stable/".into(),
                    wanted: "^1.0.0".into()
                },
                Origin::Directory {
                    path: "../common".into()
                }
            ]
        );
        let err = deps.missing(3).unwrap_err();
        assert_eq!(
            err.message,
            "Chart.yaml declares 4 dependencies; at most 3 are accepted"
        );
    }

    #[test]
    fn a_lock_pins_versions_and_must_match_chart_yaml() {
        let lock = "dependencies:\n- name: lib\n  repository: https://charts.example/stable\n  version: 1.2.3\n- name: common\n  repository: file://../common\n  version: 0.1.0\ndigest: sha256:00\n";
        let missing = chart(PARENT, Some(lock)).missing(64).unwrap();
        assert_eq!(
            missing[0].origin,
            Origin::Repository {
                url: "https://charts.example/stable/".into(),
                wanted: "1.2.3".into()
            }
        );
        let stale = "dependencies:\n- name: lib\n  repository: https://charts.example/stable\n  version: 0.9.0\n";
        let err = chart(PARENT, Some(stale)).missing(64).unwrap_err();
        assert_eq!(err.dependency, "lib");
        assert!(err.message.contains("out of sync"), "{}", err.message);
        let other_repo =
            "dependencies:\n- name: lib\n  repository: https://other.example/\n  version: 1.2.3\n";
        let err = chart(PARENT, Some(other_repo)).missing(64).unwrap_err();
        assert!(
            err.message
                .starts_with("Chart.lock lists no version from \"https://charts.example/stable/\""),
            "{}",
            err.message
        );
    }

    #[test]
    fn unsupported_repositories_are_named_without_credentials() {
        let one = |repository: &str| {
            chart(
                &format!("name: p\nversion: 1.0.0\ndependencies:\n- name: lib\n  version: 1.0.0\n  repository: {repository:?}\n"),
                None,
            )
            .missing(64)
            .unwrap_err()
            .message
        };
        assert!(one("@stable").contains("repository names are not supported yet"));
        assert!(one("alias:stable").contains("repository names are not supported yet"));
        let message = one("https://user:hunter2@charts.example/");
        assert!(
            !message.contains("hunter2") && !message.contains("user"),
            "{message}"
        );
        assert!(message.contains("credentials in the URL"), "{message}");
        assert!(one("s3://bucket/charts").contains("not a chart repository"));
        // A bad chart name never becomes a file name.
        let err = chart(
            "name: p\nversion: 1.0.0\ndependencies:\n- name: ../x\n  repository: https://c.example/\n",
            None,
        )
        .missing(64)
        .unwrap_err();
        assert!(
            err.message.contains("is not a chart name"),
            "{}",
            err.message
        );
    }

    /// An `oci://` dependency comes from its registry like one of a chart repository.
    #[test]
    fn oci_dependencies_come_from_their_registry() {
        let deps = chart(
            "name: p\nversion: 1.0.0\ndependencies:\n- name: lib\n  version: ~1.2.0\n  repository: oci://registry.example/charts\n",
            None,
        );
        assert_eq!(
            deps.missing(64).unwrap()[0].origin,
            Origin::Repository {
                url: "oci://registry.example/charts".into(),
                wanted: "~1.2.0".into()
            }
        );
    }

    #[test]
    fn constraints_accept_versions() {
        assert!(accepts("", "1.0.0"));
        assert!(accepts("^1.0.0", "1.4.0"));
        assert!(!accepts("^1.0.0", "2.0.0"));
        assert!(accepts("0.1.0", "0.1.0"));
        assert_eq!(
            chart_version("name: a\nversion: 0.3.0\n", MAX).unwrap(),
            "0.3.0"
        );
    }
}
