//! The `helm template` command line of a source (pure): flags in Argo CD's order, `--set` values escaped as Argo CD escapes them, files resolved inside the repository, the chart package, or another source's checkout (`$ref/…`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use edgecd_core::app::HelmParameter;

/// What one `helm template` run renders, every path already resolved.
#[derive(Debug, Clone, Default)]
pub struct TemplateArgs {
    pub release: String,
    /// The chart directory or packaged chart (`.tgz`).
    pub chart: PathBuf,
    /// The release namespace; empty leaves Helm's default.
    pub namespace: String,
    /// `--values` files, in order (values files, then the inline values written to a file).
    pub values: Vec<PathBuf>,
    pub parameters: Vec<HelmParameter>,
    /// `--set-file` parameters: name and resolved file.
    pub file_parameters: Vec<(String, PathBuf)>,
    pub skip_crds: bool,
    pub skip_schema_validation: bool,
    pub skip_tests: bool,
    /// `--kube-version`; empty leaves Helm's default.
    pub kube_version: String,
    /// `--api-versions`, each `group/version` or `group/version/Kind`.
    pub api_versions: Vec<String>,
}

impl TemplateArgs {
    /// The arguments after the binary.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "template".into(),
            self.release.clone().into(),
            self.chart.clone().into(),
        ];
        if !self.namespace.is_empty() {
            args.push("--namespace".into());
            args.push(self.namespace.clone().into());
        }
        args.push(if self.skip_crds {
            "--skip-crds".into()
        } else {
            "--include-crds".into()
        });
        if self.skip_schema_validation {
            args.push("--skip-schema-validation".into());
        }
        if self.skip_tests {
            args.push("--skip-tests".into());
        }
        if !self.kube_version.is_empty() {
            args.push("--kube-version".into());
            args.push(self.kube_version.clone().into());
        }
        for version in &self.api_versions {
            args.push("--api-versions".into());
            args.push(version.clone().into());
        }
        for file in &self.values {
            args.push("--values".into());
            args.push(file.clone().into());
        }
        for p in &self.parameters {
            args.push(if p.force_string {
                "--set-string".into()
            } else {
                "--set".into()
            });
            args.push(format!("{}={}", p.name, escape_set_value(&p.value)).into());
        }
        for (name, file) in &self.file_parameters {
            let mut arg = OsString::from(format!("{name}="));
            arg.push(file.as_os_str());
            args.push("--set-file".into());
            args.push(arg);
        }
        args
    }
}

/// A `--set` value as Argo CD passes it: unescaped commas are escaped (a comma would start the next
/// assignment), except in a `{a,b}` list, which Helm reads as a list.
pub fn escape_set_value(value: &str) -> String {
    if value.starts_with('{') && value.ends_with('}') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut previous = None;
    for c in value.chars() {
        if c == ',' && previous != Some('\\') {
            out.push('\\');
        }
        out.push(c);
        previous = Some(c);
    }
    out
}

/// Why a file named by the source cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// `place`: `the repository`, `chart web 1.2.0`.
    #[error("{field} {file:?}: leaves {place}")]
    Outside {
        field: String,
        file: String,
        place: String,
    },
    #[error("{field} {file:?}: no source with ref {name:?} ({known})")]
    UnknownRef {
        field: String,
        file: String,
        name: String,
        /// `known refs: a, b` or `this app has no source with a ref`.
        known: String,
    },
    #[error("{field} {file:?}: {reason}")]
    Invalid {
        field: String,
        file: String,
        reason: String,
    },
}

/// Another source of a multi-source app (Argo CD's `sources[].ref`): its checkout, where `$ref/…` files
/// resolve, and its commit, which the render cache key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// The checkout's root directory.
    pub root: PathBuf,
    /// The commit checked out.
    pub commit: String,
}

/// Other sources by ref name (without the `$`).
pub type SourceRefs = BTreeMap<String, SourceRef>;

/// Where the files a source names are looked for.
#[derive(Debug, Clone, Copy)]
pub struct FileRoots<'a> {
    /// `(root, dir)`: plain files are relative to `dir` and never above `root` (a checkout and the chart
    /// directory in it, or an unpacked package's chart directory twice); `None` when the chart has no
    /// directory to read (a package rendered as it is).
    pub base: Option<(&'a Path, &'a Path)>,
    /// What `base` is, for messages: `the repository`, `chart web 1.2.0`.
    pub place: &'a str,
    /// Other sources, for `$ref/…` files.
    pub refs: &'a SourceRefs,
}

/// The ref name of a `$ref/…` file, when it is one.
pub fn ref_name(file: &str) -> Option<&str> {
    let rest = file.strip_prefix('$')?;
    Some(rest.split_once('/').map_or(rest, |(name, _)| name))
}

impl FileRoots<'_> {
    /// Resolves `file` (`field` names it in messages): `$ref/path` inside that source's checkout, anything
    /// else inside `base` (see [`resolve_in_repo`]); `Ok(None)` when it does not exist. URLs are refused.
    pub fn resolve(&self, file: &str, field: &str) -> Result<Option<PathBuf>, FileError> {
        let invalid = |reason: &str| FileError::Invalid {
            field: field.to_owned(),
            file: file.to_owned(),
            reason: reason.to_owned(),
        };
        if file.contains("://") {
            return Err(invalid(
                "remote files are not supported; name a file of the repository",
            ));
        }
        if let Some(rest) = file.strip_prefix('$') {
            let Some((name, path)) = rest
                .split_once('/')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            else {
                return Err(invalid(
                    "a source reference names a file: $ref/path/to/file.yaml",
                ));
            };
            let source = self.refs.get(name).ok_or_else(|| FileError::UnknownRef {
                field: field.to_owned(),
                file: file.to_owned(),
                name: name.to_owned(),
                known: if self.refs.is_empty() {
                    "this app has no source with a ref".to_owned()
                } else {
                    format!(
                        "known refs: {}",
                        self.refs
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            })?;
            return resolve_in_repo(&source.root, &source.root, path, field).map_err(|e| match e {
                FileError::Outside { .. } => FileError::Outside {
                    field: field.to_owned(),
                    file: file.to_owned(),
                    place: format!("the source with ref {name:?}"),
                },
                other => other,
            });
        }
        let Some((root, dir)) = self.base else {
            return Err(invalid("this chart has no files to read"));
        };
        resolve_in_repo(root, dir, file, field).map_err(|e| match e {
            FileError::Outside { field, file, .. } => FileError::Outside {
                field,
                file,
                place: self.place.to_owned(),
            },
            other => other,
        })
    }

    /// Where `file` was looked for, for a message saying it is missing.
    pub fn place_of(&self, file: &str) -> String {
        match ref_name(file) {
            Some(name) => format!("the source with ref {name:?}"),
            None => self.place.to_owned(),
        }
    }
}

/// Resolves `file` (relative to `chart_dir`, inside `repo_root`): lexically first (`..` never above the
/// root), then with symlinks followed when it exists. `Ok(None)` when it does not exist.
pub fn resolve_in_repo(
    repo_root: &Path,
    chart_dir: &Path,
    file: &str,
    field: &str,
) -> Result<Option<PathBuf>, FileError> {
    let outside = || FileError::Outside {
        field: field.to_owned(),
        file: file.to_owned(),
        place: "the repository".to_owned(),
    };
    let relative = Path::new(file);
    if relative.is_absolute() {
        return Err(outside());
    }
    let start = chart_dir.strip_prefix(repo_root).map_err(|_| outside())?;
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in start.components().chain(relative.components()) {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or_else(outside)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    let path = parts
        .iter()
        .fold(repo_root.to_path_buf(), |p, part| p.join(part));
    match (
        std::fs::canonicalize(&path),
        std::fs::canonicalize(repo_root),
    ) {
        (Ok(real), Ok(root)) if real.starts_with(&root) => Ok(Some(path)),
        (Ok(_), _) => Err(outside()),
        (Err(_), _) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn text(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// Flags come in Argo CD's order: namespace, CRDs, capabilities, values files, parameters, file
    /// parameters; `forceString` is `--set-string`.
    #[test]
    fn template_arguments_in_order() {
        let args = TemplateArgs {
            release: "web".into(),
            chart: "/repo/charts/web".into(),
            namespace: "edge".into(),
            values: vec![
                "/repo/charts/web/values-paris.yaml".into(),
                "/tmp/v.yaml".into(),
            ],
            parameters: vec![
                HelmParameter {
                    name: "replicas".into(),
                    value: "2".into(),
                    force_string: false,
                },
                HelmParameter {
                    name: "tag".into(),
                    value: "1.2".into(),
                    force_string: true,
                },
            ],
            file_parameters: vec![("config".into(), "/repo/files/c.txt".into())],
            skip_crds: false,
            skip_schema_validation: true,
            skip_tests: false,
            kube_version: "v1.33.0".into(),
            api_versions: vec!["monitoring.coreos.com/v1".into()],
        };
        assert_eq!(
            text(&args.to_args()),
            [
                "template",
                "web",
                "/repo/charts/web",
                "--namespace",
                "edge",
                "--include-crds",
                "--skip-schema-validation",
                "--kube-version",
                "v1.33.0",
                "--api-versions",
                "monitoring.coreos.com/v1",
                "--values",
                "/repo/charts/web/values-paris.yaml",
                "--values",
                "/tmp/v.yaml",
                "--set",
                "replicas=2",
                "--set-string",
                "tag=1.2",
                "--set-file",
                "config=/repo/files/c.txt",
            ]
        );
        let skip = TemplateArgs {
            release: "r".into(),
            chart: "c.tgz".into(),
            skip_crds: true,
            skip_tests: true,
            ..TemplateArgs::default()
        };
        assert_eq!(
            text(&skip.to_args()),
            ["template", "r", "c.tgz", "--skip-crds", "--skip-tests"]
        );
    }

    #[test]
    fn set_values_escape_commas_except_lists() {
        assert_eq!(escape_set_value("a,b"), "a\\,b");
        assert_eq!(escape_set_value("a\\,b"), "a\\,b");
        assert_eq!(escape_set_value("{a,b}"), "{a,b}");
        assert_eq!(escape_set_value("plain"), "plain");
    }

    #[test]
    fn files_resolve_inside_the_repository_only() {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        std::fs::create_dir_all(root.join("charts/web")).unwrap();
        std::fs::create_dir_all(root.join("common")).unwrap();
        std::fs::write(root.join("charts/web/values-a.yaml"), "a: 1").unwrap();
        std::fs::write(root.join("common/values.yaml"), "b: 1").unwrap();
        let chart = root.join("charts/web");
        let found = resolve_in_repo(root, &chart, "values-a.yaml", "valueFiles[0]").unwrap();
        assert_eq!(found, Some(chart.join("values-a.yaml")));
        let up = resolve_in_repo(root, &chart, "../../common/values.yaml", "v").unwrap();
        assert_eq!(up, Some(root.join("common/values.yaml")));
        assert_eq!(
            resolve_in_repo(root, &chart, "missing.yaml", "v").unwrap(),
            None
        );
        assert!(resolve_in_repo(root, &chart, "../../../x.yaml", "v").is_err());
        assert!(resolve_in_repo(root, &chart, "/etc/passwd", "v").is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", chart.join("link.yaml")).unwrap();
            let err = resolve_in_repo(root, &chart, "link.yaml", "valueFiles[1]").unwrap_err();
            assert_eq!(
                err.to_string(),
                "valueFiles[1] \"link.yaml\": leaves the repository"
            );
        }
    }

    /// `$ref/path` resolves inside that source's checkout with the same escape and symlink rules; an unknown
    /// ref names the file and the known refs; plain files stay inside their base.
    #[test]
    fn ref_files_resolve_inside_their_source() {
        let repo = tempfile::tempdir().unwrap();
        let values = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("chart")).unwrap();
        std::fs::create_dir_all(values.path().join("envs")).unwrap();
        std::fs::write(values.path().join("envs/paris.yaml"), "region: eu").unwrap();
        let chart = repo.path().join("chart");
        let refs = SourceRefs::from([(
            "values".to_owned(),
            SourceRef {
                root: values.path().to_path_buf(),
                commit: "abc".into(),
            },
        )]);
        let roots = FileRoots {
            base: Some((repo.path(), &chart)),
            place: "the repository",
            refs: &refs,
        };
        assert_eq!(
            roots
                .resolve("$values/envs/paris.yaml", "valueFiles[0]")
                .unwrap(),
            Some(values.path().join("envs/paris.yaml"))
        );
        assert_eq!(roots.resolve("$values/envs/none.yaml", "v").unwrap(), None);
        assert_eq!(
            roots.place_of("$values/envs/none.yaml"),
            "the source with ref \"values\""
        );
        assert_eq!(
            roots
                .resolve("$other/x.yaml", "valueFiles[1]")
                .unwrap_err()
                .to_string(),
            "valueFiles[1] \"$other/x.yaml\": no source with ref \"other\" (known refs: values)"
        );
        let none = FileRoots {
            refs: &SourceRefs::new(),
            ..roots
        };
        assert!(
            none.resolve("$values/x.yaml", "v")
                .unwrap_err()
                .to_string()
                .ends_with("(this app has no source with a ref)")
        );
        assert_eq!(
            roots
                .resolve("$values/../../etc/passwd", "fileParameters[0].path")
                .unwrap_err()
                .to_string(),
            "fileParameters[0].path \"$values/../../etc/passwd\": leaves the source with ref \"values\""
        );
        for bad in ["$values", "$values/", "$/x.yaml"] {
            let err = roots.resolve(bad, "v").unwrap_err().to_string();
            assert!(err.contains("a source reference names a file"), "{err}");
        }
        assert!(
            roots
                .resolve("https://x.example/v.yaml", "v")
                .unwrap_err()
                .to_string()
                .contains("remote files")
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(repo.path(), values.path().join("escape")).unwrap();
            std::fs::write(repo.path().join("secret.yaml"), "s: 1").unwrap();
            let err = roots
                .resolve("$values/escape/secret.yaml", "v")
                .unwrap_err();
            assert!(
                err.to_string()
                    .ends_with("leaves the source with ref \"values\""),
                "{err}"
            );
        }
        // An unpacked package is its own root: nothing above its chart directory.
        let package = FileRoots {
            base: Some((&chart, &chart)),
            place: "chart web 1.0.0",
            refs: &refs,
        };
        assert_eq!(
            package
                .resolve("../secret.yaml", "valueFiles[0]")
                .unwrap_err()
                .to_string(),
            "valueFiles[0] \"../secret.yaml\": leaves chart web 1.0.0"
        );
        assert_eq!(package.place_of("values.yaml"), "chart web 1.0.0");
    }
}
