//! Helm sources, shared by the spoke and the hub (app of apps): a chart directory of a checkout or a chart of a chart repository rendered with the official `helm template` (a bounded subprocess, see [`run`]), with the destination cluster's capabilities, the output loaded with the workspace's YAML loader and cached by (commit or chart digest, options, capabilities).
//!
//! `edgecd-render` stays free of subprocesses and network: this crate is where both live.

pub mod args;
pub mod repo;
pub mod run;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use edgecd_core::app::{ApplicationSource, HelmSource};
use edgecd_git::RepoCredential;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tracing::Instrument as _;

pub use args::TemplateArgs;
pub use repo::{ChartRepos, FetchedChart, RepoError, RepoLimits};
pub use run::{RunError, RunLimits};

/// The Helm version the container images ship and the tests build.
pub const PINNED_HELM_VERSION: &str = "v4.3.2";

/// How Helm sources are rendered.
#[derive(Debug, Clone)]
pub struct HelmConfig {
    /// The helm binary: an absolute path, or a name looked up on `PATH` once, when the renderer is made.
    pub binary: PathBuf,
    /// Helm's home (cache, config, data), chart packages and temporary values files live under it.
    pub dir: PathBuf,
    pub run: RunLimits,
    pub repos: RepoLimits,
    /// Render results kept.
    pub cache_entries: usize,
}

impl HelmConfig {
    /// Defaults, with `binary` and the directory `dir`.
    pub fn new(binary: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            dir: dir.into(),
            run: RunLimits::default(),
            repos: RepoLimits::default(),
            cache_entries: 128,
        }
    }
}

/// `.Capabilities` of the destination cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// `v1.33.0`; empty leaves Helm's default.
    pub kube_version: String,
    /// `group/version` and `group/version/Kind` the cluster serves (`v1` and `v1/Pod` for the core group).
    pub api_versions: Vec<String>,
}

/// What one render needs besides the source.
#[derive(Debug, Clone)]
pub struct RenderContext<'a> {
    /// The release name when the source sets none (the app's name, as Argo CD).
    pub app_name: &'a str,
    /// The release namespace when the source sets none (the destination namespace).
    pub namespace: &'a str,
    /// The destination cluster's capabilities; the source's `kubeVersion`/`apiVersions` win.
    pub capabilities: &'a Capabilities,
}

/// Why a Helm source could not be rendered. Messages name the field or file and never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error("spec.source.helm.{field}: {message}")]
    Spec { field: String, message: String },
    #[error("spec.source.helm.{0}")]
    File(#[from] args::FileError),
    #[error("helm template: {0}")]
    Run(#[from] RunError),
    #[error("helm template output: {0}")]
    Output(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("helm working directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Renders Helm sources; one per process, shared (cheap to share behind an `Arc`).
#[derive(Debug)]
pub struct HelmRenderer {
    config: HelmConfig,
    repos: ChartRepos,
    cache: Mutex<RenderCache>,
}

#[derive(Debug, Default)]
struct RenderCache {
    tick: u64,
    entries: HashMap<String, (u64, Arc<Vec<Value>>)>,
}

impl HelmRenderer {
    /// A renderer; a bare binary name is looked up on this process's `PATH` now (helm itself runs without one).
    pub fn new(mut config: HelmConfig) -> Self {
        if config.binary.components().count() == 1
            && let Some(found) = find_on_path(&config.binary)
        {
            config.binary = found;
        }
        let repos = ChartRepos::new(config.dir.join("charts"), config.repos);
        Self {
            config,
            repos,
            cache: Mutex::default(),
        }
    }

    pub fn config(&self) -> &HelmConfig {
        &self.config
    }

    /// Render results held.
    pub fn cache_len(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    /// Renders the chart directory `chart_dir` of a checkout at `commit` rooted at `repo_root`.
    pub async fn render_dir(
        &self,
        source: &ApplicationSource,
        context: &RenderContext<'_>,
        repo_root: &Path,
        chart_dir: &Path,
        commit: &str,
    ) -> Result<Arc<Vec<Value>>, HelmError> {
        let helm = source.helm.clone().unwrap_or_default();
        let span = tracing::info_span!("helm_template", chart = %source.path, commit = %commit);
        let key = cache_key(
            &format!("git:{}@{commit}:{}", source.repo_url, source.path),
            &helm,
            context,
        );
        self.template(&helm, context, chart_dir, Some((repo_root, chart_dir)), key)
            .instrument(span)
            .await
    }

    /// Renders the chart `source.chart` of the chart repository `source.repoURL` at the version
    /// `source.targetRevision` resolves to; returns that version and the objects. `hard` fetches the index
    /// again.
    pub async fn render_repo_chart(
        &self,
        source: &ApplicationSource,
        context: &RenderContext<'_>,
        credential: Option<&RepoCredential>,
        hard: bool,
    ) -> Result<(String, Arc<Vec<Value>>), HelmError> {
        let helm = source.helm.clone().unwrap_or_default();
        let span =
            tracing::info_span!("helm_template", chart = %source.chart, repo = %source.repo_url);
        async move {
        if !helm.value_files.is_empty() || !helm.file_parameters.is_empty() {
            return Err(HelmError::Spec {
                field: if helm.value_files.is_empty() {
                    "fileParameters".into()
                } else {
                    "valueFiles".into()
                },
                message: "files of a chart from a chart repository are not supported yet; use values or valuesObject".into(),
            });
        }
        let fetched = self
            .repos
            .fetch(
                &source.repo_url,
                &source.chart,
                &source.target_revision,
                credential,
                helm.pass_credentials,
                hard,
            )
            .await?;
        let key = cache_key(&format!("chart:sha256:{}", fetched.digest), &helm, context);
        let objects = self
            .template(&helm, context, &fetched.package, None, key)
            .await?;
        Ok((fetched.version, objects))
        }
        .instrument(span)
        .await
    }

    async fn template(
        &self,
        helm: &HelmSource,
        context: &RenderContext<'_>,
        chart: &Path,
        in_repo: Option<(&Path, &Path)>,
        key: String,
    ) -> Result<Arc<Vec<Value>>, HelmError> {
        {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.tick += 1;
            let tick = cache.tick;
            if let Some((used, objects)) = cache.entries.get_mut(&key) {
                *used = tick;
                tracing::debug!("Helm render reused from the cache.");
                return Ok(Arc::clone(objects));
            }
        }
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| HelmError::Io { path, source }
        };
        let home = self.config.dir.join("home");
        std::fs::create_dir_all(&home).map_err(io(&home))?;
        let scratch_root = self.config.dir.join("tmp");
        std::fs::create_dir_all(&scratch_root).map_err(io(&scratch_root))?;
        // Private (0700) per render: the inline values live here.
        let scratch = tempfile::Builder::new()
            .prefix("render-")
            .tempdir_in(&scratch_root)
            .map_err(io(&scratch_root))?;
        let mut args = template_args(helm, context, chart, in_repo)?;
        if let Some(values) = inline_values(helm) {
            let file = scratch.path().join("values.yaml");
            std::fs::write(&file, values).map_err(io(&file))?;
            args.values.push(file);
        }
        let cwd = in_repo.map_or(scratch.path(), |(_, dir)| dir);
        let started = std::time::Instant::now();
        let output = run::run(
            &self.config.binary,
            &args.to_args(),
            &run::environment(&home),
            cwd,
            self.config.run,
        )
        .await
        .map_err(|e| match e {
            RunError::Failed { message } => RunError::Failed {
                message: message.replace(
                    &scratch.path().join("values.yaml").display().to_string(),
                    "spec.source.helm.values",
                ),
            },
            other => other,
        })?;
        let text = String::from_utf8(output).map_err(|_| HelmError::Output("not UTF-8".into()))?;
        let objects = Arc::new(load_manifests(&text)?);
        tracing::debug!(objects = objects.len(), elapsed = ?started.elapsed(), "Helm chart rendered.");
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.entries.len() >= self.config.cache_entries.max(1)
            && let Some(oldest) = cache
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
        {
            cache.entries.remove(&oldest);
        }
        let tick = cache.tick;
        cache.entries.insert(key, (tick, Arc::clone(&objects)));
        Ok(objects)
    }
}

/// The `helm template` arguments of a source: files resolved inside the repository (missing values files
/// skipped with `ignoreMissingValueFiles`, else an error), capabilities from the source or the cluster.
pub fn template_args(
    helm: &HelmSource,
    context: &RenderContext<'_>,
    chart: &Path,
    in_repo: Option<(&Path, &Path)>,
) -> Result<TemplateArgs, HelmError> {
    let mut values = Vec::new();
    let mut file_parameters = Vec::new();
    if let Some((root, dir)) = in_repo {
        for (i, file) in helm.value_files.iter().enumerate() {
            let field = format!("valueFiles[{i}]");
            match args::resolve_in_repo(root, dir, file, &field)? {
                Some(path) => values.push(path),
                None if helm.ignore_missing_value_files => {
                    tracing::debug!(file = %file, "Missing values file skipped (ignoreMissingValueFiles).");
                }
                None => {
                    return Err(HelmError::Spec {
                        field,
                        message: format!("{file:?}: no such file in the repository"),
                    });
                }
            }
        }
        for (i, p) in helm.file_parameters.iter().enumerate() {
            let field = format!("fileParameters[{i}].path");
            match args::resolve_in_repo(root, dir, &p.path, &field)? {
                Some(path) => file_parameters.push((p.name.clone(), path)),
                None => {
                    return Err(HelmError::Spec {
                        field,
                        message: format!("{:?}: no such file in the repository", p.path),
                    });
                }
            }
        }
    }
    let release = if helm.release_name.is_empty() {
        context.app_name
    } else {
        &helm.release_name
    };
    let namespace = if helm.namespace.is_empty() {
        context.namespace
    } else {
        &helm.namespace
    };
    let (kube_version, api_versions) =
        if helm.kube_version.is_empty() && helm.api_versions.is_empty() {
            (
                context.capabilities.kube_version.clone(),
                context.capabilities.api_versions.clone(),
            )
        } else {
            let kube = if helm.kube_version.is_empty() {
                context.capabilities.kube_version.clone()
            } else {
                helm.kube_version.clone()
            };
            let apis = if helm.api_versions.is_empty() {
                context.capabilities.api_versions.clone()
            } else {
                helm.api_versions.clone()
            };
            (kube, apis)
        };
    Ok(TemplateArgs {
        release: release.to_owned(),
        chart: chart.to_path_buf(),
        namespace: namespace.to_owned(),
        values,
        parameters: helm.parameters.clone(),
        file_parameters,
        skip_crds: helm.skip_crds,
        skip_schema_validation: helm.skip_schema_validation,
        skip_tests: helm.skip_tests,
        kube_version,
        api_versions,
    })
}

/// The inline values as a file's text: `valuesObject` (as JSON, which YAML reads) wins over `values`.
fn inline_values(helm: &HelmSource) -> Option<String> {
    match &helm.values_object {
        Some(object) if !object.is_null() => Some(object.to_string()),
        _ => (!helm.values.trim().is_empty()).then(|| helm.values.clone()),
    }
}

/// helm's output as objects: the workspace's YAML loader (aliases charged to one budget), empty documents
/// dropped, a `List` flattened, anything but an object refused naming its position.
pub fn load_manifests(text: &str) -> Result<Vec<Value>, HelmError> {
    let budget = edgecd_render::yaml::Budget::default();
    let documents = edgecd_render::yaml::load_documents_within(text, &budget)
        .map_err(|e| HelmError::Output(e.to_string()))?;
    let mut objects = Vec::new();
    for (i, document) in documents.into_iter().enumerate() {
        match document {
            Value::Null => {}
            Value::Object(ref o)
                if o.get("kind").and_then(Value::as_str) == Some("List")
                    && o.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = document.get("items") {
                    objects.extend(items.iter().filter(|v| v.is_object()).cloned());
                }
            }
            Value::Object(_) => objects.push(document),
            _ => {
                return Err(HelmError::Output(format!(
                    "document {} is not an object",
                    i + 1
                )));
            }
        }
    }
    Ok(objects)
}

/// The render cache key: what the output depends on, hashed.
fn cache_key(base: &str, helm: &HelmSource, context: &RenderContext<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(base.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(helm).unwrap_or_default());
    hasher.update([0]);
    hasher.update(context.app_name.as_bytes());
    hasher.update([0]);
    hasher.update(context.namespace.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(context.capabilities).unwrap_or_default());
    repo::hex(&hasher.finalize())
}

/// `name` on this process's `PATH`, as an absolute path.
fn find_on_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The cluster's capabilities are used unless the source sets its own; the release and namespace
    /// default to the app's.
    #[test]
    fn capabilities_come_from_the_cluster_unless_the_source_sets_them() {
        let cluster = Capabilities {
            kube_version: "v1.31.2".into(),
            api_versions: vec!["v1".into(), "monitoring.coreos.com/v1".into()],
        };
        let context = RenderContext {
            app_name: "web",
            namespace: "edge",
            capabilities: &cluster,
        };
        let args = template_args(&HelmSource::default(), &context, Path::new("c"), None).unwrap();
        assert_eq!(args.kube_version, "v1.31.2");
        assert_eq!(args.api_versions, cluster.api_versions);
        assert_eq!(
            (args.release.as_str(), args.namespace.as_str()),
            ("web", "edge")
        );
        let own = HelmSource {
            release_name: "rel".into(),
            namespace: "other".into(),
            api_versions: vec!["x.example/v1".into()],
            ..HelmSource::default()
        };
        let args = template_args(&own, &context, Path::new("c"), None).unwrap();
        assert_eq!(args.api_versions, ["x.example/v1"]);
        assert_eq!(args.kube_version, "v1.31.2");
        assert_eq!(
            (args.release.as_str(), args.namespace.as_str()),
            ("rel", "other")
        );
    }

    #[test]
    fn missing_values_files_fail_unless_ignored() {
        let repo = tempfile::tempdir().unwrap();
        let chart = repo.path().join("chart");
        std::fs::create_dir_all(&chart).unwrap();
        let caps = Capabilities::default();
        let context = RenderContext {
            app_name: "a",
            namespace: "",
            capabilities: &caps,
        };
        let mut helm = HelmSource {
            value_files: vec!["values-missing.yaml".into()],
            ..HelmSource::default()
        };
        let err = template_args(&helm, &context, &chart, Some((repo.path(), &chart))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.source.helm.valueFiles[0]: \"values-missing.yaml\": no such file in the repository"
        );
        helm.ignore_missing_value_files = true;
        let args = template_args(&helm, &context, &chart, Some((repo.path(), &chart))).unwrap();
        assert!(args.values.is_empty());
        helm.value_files = vec!["../../outside.yaml".into()];
        let err = template_args(&helm, &context, &chart, Some((repo.path(), &chart))).unwrap_err();
        assert!(err.to_string().contains("leaves the repository"), "{err}");
    }

    #[test]
    fn output_documents_load_and_lists_flatten() {
        let objects = load_manifests(
            "---\n# Source: web/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n",
        )
        .unwrap();
        assert_eq!(objects.len(), 2);
        assert!(load_manifests("- a\n").is_err());
    }
}
