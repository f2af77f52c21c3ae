//! Native renderer of Kubernetes manifests: plain directories and kustomize, shared by hub and spoke.
//!
//! ```text
//!  render(dir, options)
//!     ├─ dir has kustomization.yaml|.yml|Kustomization ──► build (kustomize pipeline, output like `kustomize build`)
//!     │      resources / generators / components ─► transformers ─► hash suffixes ─► name refs ─► sort
//!     └─ otherwise ──► plain directory (*.yaml|*.yml|*.json, *.jsonnet evaluated; recurse, include/exclude globs)
//!  to_yaml(objects) ──► multi-document YAML, byte-compatible with kustomize's output style
//! ```
//!
//! Objects are `serde_json::Value`s, ready for `kube::core::DynamicObject` without conversion.
//! All file access is confined to [`RenderOptions::repo_root`]: `..` escapes and symlinks leading outside are
//! refused with an error naming the file. [`schema`] exposes the merge strategies of built-in types.

mod build;
mod cache;
mod error;
mod fieldspec;
#[doc(hidden)]
pub mod fuzzing;
mod generators;
mod helm;
mod jsonnet;
mod kustomization;
mod loader;
mod nameref;
mod openapi;
mod patch;
mod plain;
mod replacements;
mod resource;
pub mod schema;
mod sort;
#[doc(hidden)]
pub mod synthetic;
mod transformers;
mod vars;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use cache::RenderCache;
pub use error::{RenderError, Result};
pub use helm::{ChartInflation, ChartLocation, DEFAULT_RELEASE_NAME, HelmChartInflator};
pub use jsonnet::{JsonnetLimits, JsonnetOptions, JsonnetVar};
pub use kustomization::{KUSTOMIZATION_FILE_NAMES, KustomizeEdits};
pub use serde_json::Value;

/// How to render a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RenderOptions {
    /// Directory all file access must stay in. Defaults to the git work tree enclosing the rendered directory;
    /// outside a git work tree only kustomize's own rule applies (files under their kustomization, bases anywhere).
    pub repo_root: Option<PathBuf>,
    /// Glob patterns (relative to the rendered directory) a plain-directory file must match; empty = all.
    pub include: Vec<String>,
    /// Glob patterns excluding plain-directory files.
    pub exclude: Vec<String>,
    /// Plain directories: also read subdirectories (Argo CD's `directory.recurse`; off by default, as there).
    /// Kustomizations ignore it.
    pub recurse: bool,
    /// Argo CD's `source.kustomize` options, applied to the rendered directory's kustomization before the build
    /// as `kustomize edit` would (plain directories ignore them).
    pub kustomize: Option<KustomizeEdits>,
    /// Argo CD's `directory.jsonnet` options for the `.jsonnet` files of a plain directory (kustomizations
    /// ignore them).
    pub jsonnet: JsonnetOptions,
    /// Bounds on the Jsonnet evaluation of one render (time, stack, output).
    pub jsonnet_limits: JsonnetLimits,
}

/// Renders `dir`: a kustomize build when it holds a kustomization file, otherwise its manifest files.
/// A kustomization with `helmCharts` fails here (no chart inflator); see [`render_with`].
pub fn render(dir: &Path, options: &RenderOptions) -> Result<Vec<Value>> {
    render_with(dir, options, None)
}

/// [`render`] with `helm` inflating the kustomizations' `helmCharts` entries (kustomize's
/// `build --enable-helm`); `None` makes such entries fail, naming the kustomization and the entry.
pub fn render_with(
    dir: &Path,
    options: &RenderOptions,
    helm: Option<&dyn HelmChartInflator>,
) -> Result<Vec<Value>> {
    let absolute = std::path::absolute(dir).map_err(|source| RenderError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let dir = loader::normalize(&absolute);
    if !dir.is_dir() {
        return Err(RenderError::Io {
            path: dir,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        });
    }
    let root = match &options.repo_root {
        Some(root) => {
            loader::normalize(
                &std::path::absolute(root).map_err(|source| RenderError::Io {
                    path: root.clone(),
                    source,
                })?,
            )
        }
        None => git_work_tree(&dir).unwrap_or_else(|| PathBuf::from("/")),
    };
    let repo = loader::RepoRoot::new(&root)?;
    repo.check(&dir)?;
    if kustomization::find_file(&dir).is_some() {
        build::build(&dir, &repo, options.kustomize.as_ref(), helm)
    } else {
        plain::render(&dir, &repo, options)
    }
}

/// Renders objects as kustomize-style multi-document YAML.
pub fn to_yaml(objects: &[Value]) -> String {
    yaml::to_yaml(objects)
}

fn git_work_tree(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
}
