//! Helm sources, shared by the spoke and the hub (app of apps): a chart directory of a checkout or a chart of a chart repository rendered with the official `helm template` (a bounded subprocess, see [`run`]), with the destination cluster's capabilities, dependencies that are not vendored fetched into a private scratch copy ([`deps`], [`package`]), value files of the chart, its package or another source (`$ref/…`, [`args`]), the output loaded with the workspace's YAML loader and cached by (commit or chart digest, dependencies' digests, refs' commits, options, capabilities).
//!
//! `edgecd-render` stays free of subprocesses and network: this crate is where both live.

pub mod args;
pub mod deps;
pub mod oci;
pub mod package;
pub mod repo;
pub mod run;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use edgecd_core::app::{ApplicationSource, HelmSource};
use edgecd_git::{Credentials, RepoCredential, RepoUrl};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tracing::Instrument as _;

pub use args::{FileRoots, SourceRef, SourceRefs, TemplateArgs};
pub use package::{ChartLimits, PackageError};
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
    /// Dependencies, package unpacking and chart copies.
    pub charts: ChartLimits,
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
            charts: ChartLimits::default(),
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

/// What a render may read besides the chart itself, for [`HelmRenderer::render_dir_with`] and
/// [`HelmRenderer::render_repo_chart_with`]. `RenderInputs::default()` is none of it: no other sources, no
/// credentials, indexes reused within their TTL.
#[derive(Clone, Copy)]
pub struct RenderInputs<'a> {
    /// The app's other sources by ref name (Argo CD's `sources[].ref`): a values file or file parameter
    /// `$name/path` resolves inside `refs[name].root`; the commits of the refs a source names are part of the
    /// render cache key.
    pub refs: &'a SourceRefs,
    /// Chart repository credentials, matched like git's (the longest URL prefix of the repository URL wins):
    /// for the chart of a chart repository and for every dependency fetched from a chart repository. Each is
    /// sent only to its own repository's scheme, host and port.
    pub credentials: Option<&'a Credentials>,
    /// A hard refresh: chart repository indexes are fetched again.
    pub hard: bool,
    /// The repositories this render may fetch from (the app's project's `sourceRepos`, checked at the spoke):
    /// every chart repository or OCI registry URL — the chart of a repository, each dependency, a kustomize
    /// `helmCharts` entry's `repo` — is passed to it **before** any request or cache lookup, and an `Err`
    /// (naming the policy) refuses the render. `None`: every repository is allowed.
    pub allowed_repos: Option<&'a RepoCheck>,
}

/// A check of a repository URL a render would fetch from: `Err` says why it is not allowed.
pub type RepoCheck = dyn Fn(&str) -> Result<(), String> + Send + Sync;

static NO_REFS: SourceRefs = BTreeMap::new();

impl std::fmt::Debug for RenderInputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderInputs")
            .field("refs", &self.refs)
            .field("credentials", &self.credentials)
            .field("hard", &self.hard)
            .field("allowed_repos", &self.allowed_repos.map(|_| "<check>"))
            .finish()
    }
}

impl Default for RenderInputs<'_> {
    fn default() -> Self {
        Self {
            refs: &NO_REFS,
            credentials: None,
            hard: false,
            allowed_repos: None,
        }
    }
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
    /// The chart (`charts/web` in git, `web 1.2.0` from a repository) or one of its dependencies.
    #[error("chart {chart}: {}{message}", dependency_prefix(.dependency))]
    Chart {
        chart: String,
        /// Empty for the chart's own metadata.
        dependency: String,
        message: String,
    },
    /// A dependency's chart repository failed (unreachable, no such version, digest mismatch).
    #[error("chart {chart}: dependency {dependency}: {source}")]
    DependencyRepo {
        chart: String,
        dependency: String,
        #[source]
        source: Box<RepoError>,
    },
    /// A chart repository or registry the render may not fetch from (the project's `sourceRepos`).
    #[error("{what}: repository {url} is not allowed: {message} (sourceRepos)")]
    RepoNotAllowed {
        what: String,
        url: String,
        message: String,
    },
    #[error(transparent)]
    Package(#[from] PackageError),
    /// An OCI artifact source that could not be unpacked (`artifact my-image 1.2.0`).
    #[error("OCI registry {registry}: {what}: {reason}")]
    Artifact {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("helm working directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn dependency_prefix(dependency: &str) -> String {
    if dependency.is_empty() {
        String::new()
    } else {
        format!("dependency {dependency}: ")
    }
}

/// Renders Helm sources; one per process, shared (cheap to share behind an `Arc`).
#[derive(Debug)]
pub struct HelmRenderer {
    config: HelmConfig,
    repos: ChartRepos,
    cache: Mutex<RenderCache>,
    /// What each package (by digest) holds in `Chart.yaml`, `Chart.lock` and `charts/`.
    packages: Mutex<HashMap<String, Arc<deps::ChartDependencies>>>,
}

#[derive(Debug, Default)]
struct RenderCache {
    tick: u64,
    entries: HashMap<String, (u64, Arc<Vec<Value>>)>,
}

/// The dependencies a render adds to a scratch copy of the chart.
#[derive(Debug, Clone, Default)]
struct Resolved {
    /// Fetched from chart repositories: name and verified package.
    fetched: Vec<(String, FetchedChart)>,
    /// `file://` directories: the dependency and its path relative to the chart directory.
    directories: Vec<(deps::Dependency, String)>,
}

impl Resolved {
    fn is_empty(&self) -> bool {
        self.fetched.is_empty() && self.directories.is_empty()
    }

    /// What the render cache key holds of them: names and digests (directories are part of the chart's own
    /// commit or digest).
    fn key_parts(&self) -> Vec<String> {
        self.fetched
            .iter()
            .map(|(name, chart)| format!("dependency:{name}:sha256:{}", chart.digest))
            .chain(
                self.directories
                    .iter()
                    .map(|(d, path)| format!("dependency:{}:file://{path}", d.name)),
            )
            .collect()
    }
}

/// The chart of one render.
#[derive(Debug, Clone)]
enum Chart {
    /// A chart directory of a checkout.
    Dir {
        repo_root: PathBuf,
        chart_dir: PathBuf,
    },
    /// A verified package; `unpack` when its files are read or dependencies are added.
    Package { package: PathBuf, unpack: bool },
}

/// Where helm is pointed for one render, once the scratch directory is ready.
#[derive(Debug)]
struct Prepared {
    /// What `helm template` is given: the chart directory, its scratch copy, the package or its unpacked chart.
    chart: PathBuf,
    /// Where plain files resolve: `(root, dir)`, see [`FileRoots::base`].
    base: Option<(PathBuf, PathBuf)>,
    /// What `base` is, for messages.
    place: String,
    /// helm's working directory.
    cwd: PathBuf,
}

impl Chart {
    /// Copies or unpacks the chart into `scratch` when dependencies are added or the package's files read
    /// (blocking: run off the async workers).
    fn prepare(
        self,
        scratch: &Path,
        label: &str,
        resolved: &Resolved,
        limits: ChartLimits,
    ) -> Result<Prepared, HelmError> {
        match self {
            Chart::Dir {
                repo_root,
                chart_dir,
            } => {
                let chart = if resolved.is_empty() {
                    chart_dir.clone()
                } else {
                    let name = chart_dir.file_name().unwrap_or_else(|| "chart".as_ref());
                    let copy = scratch.join("chart").join(name);
                    package::copy_dir(&chart_dir, &copy, label, limits)?;
                    add_dependencies(&copy, &repo_root, &chart_dir, label, resolved, limits)?;
                    copy
                };
                Ok(Prepared {
                    chart,
                    base: Some((repo_root, chart_dir.clone())),
                    place: "the repository".into(),
                    cwd: chart_dir,
                })
            }
            Chart::Package { package, unpack } => {
                let (chart, base) = if unpack {
                    let dir = package::unpack(&package, &scratch.join("package"), label, limits)?;
                    add_dependencies(&dir, &dir, &dir, label, resolved, limits)?;
                    (dir.clone(), Some((dir.clone(), dir)))
                } else {
                    (package, None)
                };
                Ok(Prepared {
                    chart,
                    base,
                    place: format!("chart {label}"),
                    cwd: scratch.to_path_buf(),
                })
            }
        }
    }
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
            packages: Mutex::default(),
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

    /// Renders the chart directory `chart_dir` of a checkout at `commit` rooted at `repo_root`, with no other
    /// sources and no chart repository credentials: [`render_dir_with`](Self::render_dir_with) with
    /// `RenderInputs::default()`.
    pub async fn render_dir(
        &self,
        source: &ApplicationSource,
        context: &RenderContext<'_>,
        repo_root: &Path,
        chart_dir: &Path,
        commit: &str,
    ) -> Result<Arc<Vec<Value>>, HelmError> {
        self.render_dir_with(
            source,
            context,
            &RenderInputs::default(),
            repo_root,
            chart_dir,
            commit,
        )
        .await
    }

    /// Renders the chart directory `chart_dir` of a checkout at `commit` rooted at `repo_root`. Dependencies
    /// that `Chart.yaml` declares and `charts/` does not vendor are fetched (chart repositories, with
    /// `inputs.credentials`) or copied (`file://`, inside `repo_root`) into a private scratch copy of the
    /// chart, which is what helm renders; the checkout is never written. `$ref/…` files resolve in
    /// `inputs.refs`.
    pub async fn render_dir_with(
        &self,
        source: &ApplicationSource,
        context: &RenderContext<'_>,
        inputs: &RenderInputs<'_>,
        repo_root: &Path,
        chart_dir: &Path,
        commit: &str,
    ) -> Result<Arc<Vec<Value>>, HelmError> {
        let helm = source.helm.clone().unwrap_or_default();
        let span = tracing::info_span!("helm_template", chart = %source.path, commit = %commit);
        let label = if source.path.is_empty() {
            ".".to_owned()
        } else {
            source.path.clone()
        };
        async move {
            let files = package::inspect_dir(chart_dir, &label, self.config.charts)?;
            let dependencies =
                deps::ChartDependencies::parse(&files, self.config.charts.max_metadata_bytes)
                    .map_err(|e| chart_error(&label, e))?;
            let resolved = self
                .resolve_dependencies(&dependencies, &label, inputs, None)
                .await?;
            let mut parts = resolved.key_parts();
            parts.extend(ref_key_parts(&helm, inputs.refs));
            let key = cache_key(
                &format!("git:{}@{commit}:{}", source.repo_url, source.path),
                &helm,
                context,
                &parts,
            );
            let chart = Chart::Dir {
                repo_root: repo_root.to_path_buf(),
                chart_dir: chart_dir.to_path_buf(),
            };
            self.template(&helm, context, inputs.refs, chart, &label, &resolved, key)
                .await
        }
        .instrument(span)
        .await
    }

    /// Renders the chart `source.chart` of the chart repository `source.repoURL` at the version
    /// `source.targetRevision` resolves to, with `credential` for that repository and no other sources;
    /// returns that version and the objects. `hard` fetches the indexes again. Dependencies from the same
    /// repository (`credential`'s URL prefix) get `credential` too.
    pub async fn render_repo_chart(
        &self,
        source: &ApplicationSource,
        context: &RenderContext<'_>,
        credential: Option<&RepoCredential>,
        hard: bool,
    ) -> Result<(String, Arc<Vec<Value>>), HelmError> {
        let inputs = RenderInputs {
            hard,
            ..RenderInputs::default()
        };
        self.repo_chart(source, context, &inputs, credential).await
    }

    /// Renders the chart `source.chart` of the chart repository `source.repoURL` at the version
    /// `source.targetRevision` resolves to; returns that version and the objects. The repository's
    /// credential, and each dependency's, is the one of `inputs.credentials` whose URL prefix matches.
    /// `valueFiles` and `fileParameters` resolve inside the chart of the package (unpacked into a private
    /// scratch directory, never above the chart's directory) or, as `$ref/…`, in `inputs.refs`; missing
    /// dependencies are fetched as for [`render_dir_with`](Self::render_dir_with).
    pub async fn render_repo_chart_with(
        &self,
        source: &ApplicationSource,
        context: &RenderContext<'_>,
        inputs: &RenderInputs<'_>,
    ) -> Result<(String, Arc<Vec<Value>>), HelmError> {
        check_repo(
            inputs,
            || format!("chart {}", source.chart),
            &source.repo_url,
        )?;
        let credential = find_credential(inputs.credentials, &source.repo_url);
        self.repo_chart(source, context, inputs, credential.as_deref())
            .await
    }

    /// The tree of the OCI artifact `source.repoURL` names (Argo CD's OCI sources: no `chart`) at the tag
    /// `source.targetRevision` resolves to, with the credential of `inputs.credentials` whose URL prefix
    /// matches, after the project's `sourceRepos` allowed it. The content layer is verified against the
    /// manifest's digest and unpacked once per digest under the renderer's directory (`artifacts/`): plain
    /// files and directories only, bounded as chart packages are; a Helm chart's top directory is the tree's
    /// root, as Argo CD unpacks it. The caller renders `source.path` inside it and must not write there.
    pub async fn fetch_artifact(
        &self,
        source: &ApplicationSource,
        inputs: &RenderInputs<'_>,
    ) -> Result<ArtifactTree, HelmError> {
        check_repo(
            inputs,
            || format!("artifact {}", source.repo_url),
            &source.repo_url,
        )?;
        let credential = find_credential(inputs.credentials, &source.repo_url);
        let fetched = self
            .repos
            .fetch_artifact(
                &source.repo_url,
                &source.target_revision,
                credential.as_deref(),
                inputs.hard,
            )
            .await?;
        let artifacts = self.config.dir.join("artifacts");
        // Per layout too: the same layer pushed as a chart (its top directory the root) and as a tarball.
        let helm_chart = fetched.media_type == oci::CHART_LAYER_MEDIA_TYPE;
        let layout = if helm_chart { "chart" } else { "tree" };
        // Per origin too, as the package cache is (the package's directory names it).
        let scope = fetched
            .package
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let root = artifacts
            .join(scope)
            .join(format!("sha256-{}-{layout}", fetched.digest));
        if !root.is_dir() {
            let registry = deps::redacted(&source.repo_url)
                .trim_matches('"')
                .to_owned();
            let name = source
                .repo_url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            let what = format!("artifact {name}:{}", fetched.version);
            let limits = self.config.charts;
            let package = fetched.package.clone();
            let target = root.clone();
            let label = what.clone();
            let media_type = fetched.media_type;
            let unpacked = tokio::task::spawn_blocking(move || {
                unpack_artifact(&package, media_type, &artifacts, &target, &label, limits)
            })
            .await
            .unwrap_or_else(|e| Err(format!("unpacking: {e}")));
            unpacked.map_err(|reason| HelmError::Artifact {
                registry,
                what,
                reason,
            })?;
            // A new tree: the least recently used idle ones beyond the cap go (off the async workers).
            let dir = self.config.dir.join("artifacts");
            let _ = tokio::task::spawn_blocking(move || {
                sweep_artifacts(&dir, MAX_ARTIFACT_TREES, ARTIFACT_IDLE);
            })
            .await;
        }
        touch(&root);
        let revision = if fetched.version.is_empty() {
            format!("sha256:{}", fetched.manifest_digest)
        } else {
            format!("{}@sha256:{}", fetched.version, fetched.manifest_digest)
        };
        Ok(ArtifactTree {
            version: fetched.version,
            revision,
            digest: fetched.digest,
            root,
            helm_chart,
        })
    }

    async fn repo_chart(
        &self,
        source: &ApplicationSource,
        context: &RenderContext<'_>,
        inputs: &RenderInputs<'_>,
        credential: Option<&RepoCredential>,
    ) -> Result<(String, Arc<Vec<Value>>), HelmError> {
        let helm = source.helm.clone().unwrap_or_default();
        let span =
            tracing::info_span!("helm_template", chart = %source.chart, repo = %source.repo_url);
        async move {
            let fetched = self
                .repos
                .fetch(
                    &source.repo_url,
                    &source.chart,
                    &source.target_revision,
                    credential,
                    helm.pass_credentials,
                    inputs.hard,
                )
                .await?;
            let label = format!("{} {}", source.chart, fetched.version);
            let dependencies = self.package_dependencies(&fetched, &label).await?;
            let resolved = self
                .resolve_dependencies(&dependencies, &label, inputs, credential)
                .await?;
            let mut parts = resolved.key_parts();
            parts.extend(ref_key_parts(&helm, inputs.refs));
            let key = cache_key(
                &format!("chart:sha256:{}", fetched.digest),
                &helm,
                context,
                &parts,
            );
            let reads_files = helm
                .value_files
                .iter()
                .chain(helm.file_parameters.iter().map(|p| &p.path))
                .any(|f| args::ref_name(f).is_none());
            let chart = Chart::Package {
                package: fetched.package.clone(),
                unpack: reads_files || !resolved.is_empty(),
            };
            let objects = self
                .template(&helm, context, inputs.refs, chart, &label, &resolved, key)
                .await?;
            Ok((fetched.version, objects))
        }
        .instrument(span)
        .await
    }

    /// What a package holds of its dependencies, read once per digest (off the async workers).
    async fn package_dependencies(
        &self,
        fetched: &FetchedChart,
        label: &str,
    ) -> Result<Arc<deps::ChartDependencies>, HelmError> {
        if let Some(found) = self
            .packages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&fetched.digest)
        {
            return Ok(Arc::clone(found));
        }
        let files = {
            let package = fetched.package.clone();
            let owned = label.to_owned();
            let limits = self.config.charts;
            tokio::task::spawn_blocking(move || package::inspect(&package, &owned, limits))
                .await
                .map_err(|e| HelmError::Io {
                    path: format!("chart {label}"),
                    source: std::io::Error::other(format!("reading the package: {e}")),
                })??
        };
        let parsed = Arc::new(
            deps::ChartDependencies::parse(&files, self.config.charts.max_metadata_bytes)
                .map_err(|e| chart_error(label, e))?,
        );
        let mut packages = self.packages.lock().unwrap_or_else(PoisonError::into_inner);
        if packages.len() >= 256 {
            packages.clear();
        }
        packages.insert(fetched.digest.clone(), Arc::clone(&parsed));
        Ok(parsed)
    }

    /// Fetches the dependencies the chart does not vendor from their chart repositories (index and package
    /// cached, verified by digest); `file://` ones are copied later, when the scratch copy exists.
    async fn resolve_dependencies(
        &self,
        dependencies: &deps::ChartDependencies,
        label: &str,
        inputs: &RenderInputs<'_>,
        chart_credential: Option<&RepoCredential>,
    ) -> Result<Resolved, HelmError> {
        let missing = dependencies
            .missing(self.config.charts.max_dependencies)
            .map_err(|e| chart_error(label, e))?;
        let mut resolved = Resolved::default();
        for deps::Missing { dependency, origin } in missing {
            match origin {
                deps::Origin::Repository { url, wanted } => {
                    check_repo(
                        inputs,
                        || format!("chart {label}: dependency {}", dependency.name),
                        &url,
                    )?;
                    let credential = find_credential(inputs.credentials, &url).or_else(|| {
                        chart_credential
                            .filter(|c| credential_covers(&c.url_prefix, &url))
                            .map(|c| Arc::new(c.clone()))
                    });
                    let fetched = self
                        .repos
                        .fetch(
                            &url,
                            &dependency.name,
                            &wanted,
                            credential.as_deref(),
                            false,
                            inputs.hard,
                        )
                        .await
                        .map_err(|source| HelmError::DependencyRepo {
                            chart: label.to_owned(),
                            dependency: dependency.name.clone(),
                            source: Box::new(source),
                        })?;
                    tracing::debug!(dependency = %dependency.name, version = %fetched.version, "Chart dependency fetched.");
                    resolved.fetched.push((dependency.name, fetched));
                }
                deps::Origin::Directory { path } => resolved.directories.push((dependency, path)),
            }
        }
        Ok(resolved)
    }

    /// A render from the cache, else helm run on `chart` (a scratch copy with the dependencies added, when
    /// there are any) and the result cached under `key`.
    #[allow(clippy::too_many_arguments)]
    async fn template(
        &self,
        helm: &HelmSource,
        context: &RenderContext<'_>,
        refs: &SourceRefs,
        chart: Chart,
        label: &str,
        resolved: &Resolved,
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
        // Private (0700) per render: the inline values, the chart's copy or unpacked package live here.
        let scratch = tempfile::Builder::new()
            .prefix("render-")
            .tempdir_in(&scratch_root)
            .map_err(io(&scratch_root))?;
        let chart_shown = format!("chart {label}");
        let prepared = {
            let scratch = scratch.path().to_path_buf();
            let label = label.to_owned();
            let resolved = resolved.clone();
            let limits = self.config.charts;
            tokio::task::spawn_blocking(move || chart.prepare(&scratch, &label, &resolved, limits))
                .await
                .map_err(|e| HelmError::Io {
                    path: chart_shown.clone(),
                    source: std::io::Error::other(format!("preparing the chart: {e}")),
                })??
        };
        let roots = FileRoots {
            base: prepared
                .base
                .as_ref()
                .map(|(r, d)| (r.as_path(), d.as_path())),
            place: &prepared.place,
            refs,
        };
        let chart_path = &prepared.chart;
        let cwd = &prepared.cwd;
        let mut args = template_args(helm, context, chart_path, &roots)?;
        let values_file = scratch.path().join("values.yaml");
        if let Some(values) = inline_values(helm) {
            std::fs::write(&values_file, values).map_err(io(&values_file))?;
            args.values.push(values_file.clone());
        }
        // helm's messages name files by path: the scratch directory and other checkouts are shown as what
        // they are.
        let mut shown: Vec<(String, String)> = vec![(
            values_file.display().to_string(),
            "spec.source.helm.values".into(),
        )];
        if chart_path != cwd {
            shown.push((chart_path.display().to_string(), chart_shown.clone()));
        }
        for (name, source) in refs {
            shown.push((source.root.display().to_string(), format!("${name}")));
        }
        shown.push((scratch.path().display().to_string(), "(scratch)".into()));
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
            RunError::Failed { mut message } => {
                for (path, name) in &shown {
                    if !path.is_empty() {
                        message = message.replace(path.as_str(), name);
                    }
                }
                RunError::Failed { message }
            }
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

/// Puts the resolved dependencies into `chart/charts/`: fetched packages (hard-linked from the package
/// cache, else copied) and `file://` directories (resolved from `dir`, inside `root`; copied).
fn add_dependencies(
    chart: &Path,
    root: &Path,
    dir: &Path,
    label: &str,
    resolved: &Resolved,
    limits: ChartLimits,
) -> Result<(), HelmError> {
    if resolved.is_empty() {
        return Ok(());
    }
    let charts = chart.join("charts");
    std::fs::create_dir_all(&charts).map_err(|source| HelmError::Io {
        path: format!("chart {label}: charts/"),
        source,
    })?;
    for (name, fetched) in &resolved.fetched {
        let short = fetched.digest.get(..12).unwrap_or(&fetched.digest);
        let target = charts.join(format!("{name}-{short}.tgz"));
        if target.exists() {
            continue;
        }
        if std::fs::hard_link(&fetched.package, &target).is_err() {
            std::fs::copy(&fetched.package, &target).map_err(|source| HelmError::Io {
                path: format!("chart {label}: charts/{name}"),
                source,
            })?;
        }
    }
    for (dependency, path) in &resolved.directories {
        let fail = |message: String| HelmError::Chart {
            chart: label.to_owned(),
            dependency: dependency.name.clone(),
            message,
        };
        let shown = format!("file://{path}");
        if path.starts_with('/') {
            return Err(fail(format!(
                "{shown:?} is absolute; name a directory relative to the chart"
            )));
        }
        let field = format!("dependency {}", dependency.name);
        let found = args::resolve_in_repo(root, dir, path, &field)
            .map_err(|_| fail(format!("{shown:?} leaves the repository")))?
            .ok_or_else(|| fail(format!("{shown:?}: no such directory")))?;
        if dir.starts_with(&found) {
            return Err(fail(format!(
                "{shown:?} is the chart itself or a directory holding it"
            )));
        }
        let files = package::inspect_dir(&found, label, limits)?;
        let text = files
            .chart_yaml
            .ok_or_else(|| fail(format!("{shown:?} holds no Chart.yaml")))?;
        let version = deps::chart_version(&text, limits.max_metadata_bytes)
            .map_err(|e| fail(format!("{shown:?}: {e}")))?;
        if !deps::accepts(&dependency.version, &version) {
            return Err(fail(format!(
                "{shown:?} is version {version}, which {:?} does not accept",
                dependency.version
            )));
        }
        let mut target = charts.join(&dependency.name);
        let mut n = 1;
        while target.exists() {
            n += 1;
            target = charts.join(format!("{}-{n}", dependency.name));
        }
        package::copy_dir(&found, &target, label, limits)?;
    }
    Ok(())
}

/// A dependency error of the chart `label`.
fn chart_error(label: &str, e: deps::DependencyError) -> HelmError {
    HelmError::Chart {
        chart: label.to_owned(),
        dependency: e.dependency,
        message: e.message,
    }
}

/// The credential of `credentials` for the repository `url` (longest URL prefix; for an OCI registry with or
/// without `oci://`).
fn find_credential(credentials: Option<&Credentials>, url: &str) -> Option<Arc<RepoCredential>> {
    if oci::is_oci(url) {
        return oci::find_credential(credentials?, url);
    }
    let url = RepoUrl::parse(url).ok()?;
    credentials?.find(&url)
}

/// An OCI artifact source's unpacked tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactTree {
    /// The tag the target revision resolved to (empty when it was pinned by a digest alone).
    pub version: String,
    /// What the app's revision is: `tag@sha256:<manifest digest>` (or `sha256:<…>`), as Argo CD reports an
    /// OCI source's digest; a re-pushed tag is a new revision, and the revision fetches that manifest again.
    pub revision: String,
    /// Hex SHA-256 of the content layer.
    pub digest: String,
    /// The unpacked tree (shared: read it, never write it).
    pub root: PathBuf,
    /// Whether the content layer is a Helm chart (rendered with helm, as Argo CD does).
    pub helm_chart: bool,
}

/// Unpacks a content layer into a fresh directory beside `target` and renames it there (a render that
/// unpacked the same digest first wins; its tree is the same).
fn unpack_artifact(
    package: &Path,
    media_type: &str,
    artifacts: &Path,
    target: &Path,
    label: &str,
    limits: ChartLimits,
) -> Result<(), String> {
    let parent = target.parent().unwrap_or(artifacts);
    std::fs::create_dir_all(parent).map_err(|e| format!("creating the artifact cache: {e}"))?;
    let scratch = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)
        .map_err(|e| format!("creating a scratch directory: {e}"))?;
    let tree = if media_type == oci::CHART_LAYER_MEDIA_TYPE {
        package::unpack(package, scratch.path(), label, limits).map_err(|e| e.reason)?
    } else {
        let tree = scratch.path().join("tree");
        let gzip = media_type.ends_with("+gzip");
        package::unpack_tree(package, &tree, label, limits, gzip).map_err(|e| e.reason)?;
        tree
    };
    match std::fs::rename(&tree, target) {
        Ok(()) => Ok(()),
        Err(_) if target.is_dir() => Ok(()),
        Err(e) => Err(format!("storing the unpacked tree: {e}")),
    }
}

/// Unpacked artifact trees kept: beyond this many, the least recently used idle ones are removed.
const MAX_ARTIFACT_TREES: usize = 32;
/// How long a tree (or a scratch directory left by a process that died) must have been unused before it may
/// be removed: far longer than any render holds one.
const ARTIFACT_IDLE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Marks a tree as used now (its modification time), so the sweep keeps it.
fn touch(tree: &Path) {
    if let Ok(dir) = std::fs::File::open(tree) {
        let _ = dir.set_modified(std::time::SystemTime::now());
    }
}

/// Removes, under `artifacts/<origin>/`, the scratch directories idle for `idle` (a process killed while
/// unpacking) and, beyond `keep` trees, the least recently used trees idle for `idle`; empty origin
/// directories go too. Best effort: what cannot be read or removed is left.
fn sweep_artifacts(artifacts: &Path, keep: usize, idle: std::time::Duration) {
    let now = std::time::SystemTime::now();
    let idle_since = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| now.duration_since(at).ok())
    };
    let mut trees = Vec::new();
    let Ok(origins) = std::fs::read_dir(artifacts) else {
        return;
    };
    for origin in origins.filter_map(Result::ok).map(|e| e.path()) {
        let Ok(entries) = std::fs::read_dir(&origin) else {
            continue;
        };
        let mut empty = true;
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            let unused = idle_since(&path);
            let scratch = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".unpack-"));
            if scratch && unused.is_some_and(|d| d >= idle) {
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            empty = false;
            if !scratch {
                trees.push((unused.unwrap_or_default(), path));
            }
        }
        if empty {
            let _ = std::fs::remove_dir(&origin);
        }
    }
    if trees.len() <= keep {
        return;
    }
    // Most idle first.
    trees.sort_by_key(|t| std::cmp::Reverse(t.0));
    let excess = trees.len() - keep;
    for (unused, path) in trees.into_iter().take(excess) {
        if unused >= idle {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Refuses `url` when `inputs.allowed_repos` does not allow it; `what` names the chart or dependency.
fn check_repo(
    inputs: &RenderInputs<'_>,
    what: impl FnOnce() -> String,
    url: &str,
) -> Result<(), HelmError> {
    match inputs.allowed_repos.map(|allowed| allowed(url)) {
        Some(Err(message)) => Err(HelmError::RepoNotAllowed {
            what: what(),
            url: url.to_owned(),
            message,
        }),
        _ => Ok(()),
    }
}

/// Whether a credential for `prefix` covers the repository `url`, by the rule every lookup uses: on a
/// boundary ([`edgecd_git::prefix_covers`]), and for an OCI registry on the same authority too.
fn credential_covers(prefix: &str, url: &str) -> bool {
    if oci::is_oci(url) {
        return oci::prefix_covers_oci(prefix, url);
    }
    RepoUrl::parse(url).is_ok_and(|u| edgecd_git::prefix_covers(prefix, u.as_str()))
}

/// The commits of the refs the source's files name, for the cache key.
fn ref_key_parts(helm: &HelmSource, refs: &SourceRefs) -> Vec<String> {
    let mut names: Vec<&str> = helm
        .value_files
        .iter()
        .chain(helm.file_parameters.iter().map(|p| &p.path))
        .filter_map(|f| args::ref_name(f))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| Some(format!("ref:{name}:{}", refs.get(name)?.commit)))
        .collect()
}

/// The `helm template` arguments of a source: files resolved by `roots` (missing values files skipped with
/// `ignoreMissingValueFiles`, else an error), capabilities from the source or the cluster.
pub fn template_args(
    helm: &HelmSource,
    context: &RenderContext<'_>,
    chart: &Path,
    roots: &FileRoots<'_>,
) -> Result<TemplateArgs, HelmError> {
    let mut values = Vec::new();
    let mut file_parameters = Vec::new();
    for (i, file) in helm.value_files.iter().enumerate() {
        let field = format!("valueFiles[{i}]");
        match roots.resolve(file, &field)? {
            Some(path) => values.push(path),
            None if helm.ignore_missing_value_files => {
                tracing::debug!(file = %file, "Missing values file skipped (ignoreMissingValueFiles).");
            }
            None => {
                return Err(HelmError::Spec {
                    field,
                    message: format!("{file:?}: no such file in {}", roots.place_of(file)),
                });
            }
        }
    }
    for (i, p) in helm.file_parameters.iter().enumerate() {
        let field = format!("fileParameters[{i}].path");
        match roots.resolve(&p.path, &field)? {
            Some(path) => file_parameters.push((p.name.clone(), path)),
            None => {
                return Err(HelmError::Spec {
                    field,
                    message: format!("{:?}: no such file in {}", p.path, roots.place_of(&p.path)),
                });
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

/// The render cache key: what the output depends on (`parts`: dependencies' digests, refs' commits), hashed.
fn cache_key(
    base: &str,
    helm: &HelmSource,
    context: &RenderContext<'_>,
    parts: &[String],
) -> String {
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
    for part in parts {
        hasher.update([0]);
        hasher.update(part.as_bytes());
    }
    repo::hex(&hasher.finalize())
}

/// `name` on this process's `PATH`, as an absolute path.
fn find_on_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// kustomize's `helmCharts` (the spoke's chart inflator): what it reads of a chart of a repository.
impl HelmRenderer {
    /// The `values.yaml` of the chart `chart` of the chart repository or OCI registry `repo_url` at the version
    /// `version` resolves to (fetched, verified and cached as for [`render_repo_chart_with`](Self::render_repo_chart_with),
    /// with `inputs.credentials`; unpacked into a private scratch directory under the chart limits and removed
    /// after); `None` when the chart has none. kustomize merges a `helmCharts` entry's `valuesInline` with it.
    pub async fn repo_chart_values(
        &self,
        repo_url: &str,
        chart: &str,
        version: &str,
        inputs: &RenderInputs<'_>,
    ) -> Result<Option<String>, HelmError> {
        check_repo(inputs, || format!("chart {chart}"), repo_url)?;
        let credential = find_credential(inputs.credentials, repo_url);
        let fetched = self
            .repos
            .fetch(
                repo_url,
                chart,
                version,
                credential.as_deref(),
                false,
                inputs.hard,
            )
            .await?;
        let label = format!("{chart} {}", fetched.version);
        let scratch_root = self.config.dir.join("tmp");
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| HelmError::Io { path, source }
        };
        std::fs::create_dir_all(&scratch_root).map_err(io(&scratch_root))?;
        let scratch = tempfile::Builder::new()
            .prefix("values-")
            .tempdir_in(&scratch_root)
            .map_err(io(&scratch_root))?;
        let limits = self.config.charts;
        let package = fetched.package.clone();
        let dest = scratch.path().to_path_buf();
        let shown = format!("chart {label}");
        tokio::task::spawn_blocking(move || -> Result<Option<String>, HelmError> {
            let dir = package::unpack(&package, &dest, &label, limits)?;
            match std::fs::read(dir.join("values.yaml")) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(HelmError::Io {
                    path: format!("chart {label}: values.yaml"),
                    source,
                }),
                Ok(bytes) => String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| HelmError::Chart {
                        chart: label,
                        dependency: String::new(),
                        message: "values.yaml is not UTF-8".into(),
                    }),
            }
        })
        .await
        .map_err(|e| HelmError::Io {
            path: shown,
            source: std::io::Error::other(format!("reading values.yaml: {e}")),
        })?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #[test]
    fn idle_artifact_trees_beyond_the_cap_and_dead_scratch_directories_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = dir.path().join("artifacts");
        let origin = artifacts.join("0123456789abcdef");
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let make = |name: &str, old: bool| {
            let path = origin.join(name);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("a.yaml"), "x: 1\n").unwrap();
            if old {
                std::fs::File::open(&path)
                    .unwrap()
                    .set_modified(hour_ago)
                    .unwrap();
            }
            path
        };
        let old_a = make("sha256-a-tree", true);
        let old_b = make("sha256-b-tree", true);
        let fresh = make("sha256-c-tree", false);
        let dead = make(".unpack-x", true);
        let live = make(".unpack-y", false);
        // Two kept: the most idle one goes; the fresh one stays even beyond the cap.
        super::sweep_artifacts(&artifacts, 2, std::time::Duration::from_secs(600));
        assert!(!dead.exists() && live.exists());
        let left: Vec<bool> = [&old_a, &old_b, &fresh]
            .iter()
            .map(|p| p.exists())
            .collect();
        assert_eq!(left.iter().filter(|x| **x).count(), 2, "{left:?}");
        assert!(fresh.exists());
        super::sweep_artifacts(&artifacts, 0, std::time::Duration::from_secs(600));
        assert!(fresh.exists() && !old_a.exists() && !old_b.exists());
    }

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
        let none = FileRoots {
            base: None,
            place: "the repository",
            refs: &SourceRefs::new(),
        };
        let args = template_args(&HelmSource::default(), &context, Path::new("c"), &none).unwrap();
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
        let args = template_args(&own, &context, Path::new("c"), &none).unwrap();
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
        let refs = SourceRefs::new();
        let roots = FileRoots {
            base: Some((repo.path(), &chart)),
            place: "the repository",
            refs: &refs,
        };
        let err = template_args(&helm, &context, &chart, &roots).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.source.helm.valueFiles[0]: \"values-missing.yaml\": no such file in the repository"
        );
        helm.ignore_missing_value_files = true;
        let args = template_args(&helm, &context, &chart, &roots).unwrap();
        assert!(args.values.is_empty());
        helm.value_files = vec!["../../outside.yaml".into()];
        let err = template_args(&helm, &context, &chart, &roots).unwrap_err();
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
