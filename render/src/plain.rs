//! Plain directory source: every `.yaml`/`.yml`/`.json` file in a directory (and below it when recursing), filtered by globs, and every `.jsonnet` program evaluated.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::Value;

use crate::RenderOptions;
use crate::error::{RenderError, Result};
use crate::jsonnet;
use crate::loader::{RepoRoot, relative_to};
use crate::yaml;

/// Loads all manifests below `dir` in path order (documents in file order, `List` kinds flattened); `.jsonnet`
/// files are evaluated with the options' Jsonnet settings.
pub(crate) fn render(dir: &Path, repo: &RepoRoot, options: &RenderOptions) -> Result<Vec<Value>> {
    let include = glob_set(dir, &options.include)?;
    let exclude = glob_set(dir, &options.exclude)?;
    let mut files = Vec::new();
    collect(dir, repo, options.recurse, &mut files)?;
    files.sort();
    let mut objects = Vec::new();
    let mut run = None;
    for file in files {
        let relative = relative_to(&file, dir);
        if include.as_ref().is_some_and(|g| !g.is_match(&relative))
            || exclude.as_ref().is_some_and(|g| g.is_match(&relative))
        {
            continue;
        }
        if relative.ends_with(".jsonnet") {
            let run = match &mut run {
                Some(run) => run,
                None => run.insert(jsonnet::Run::new(
                    dir,
                    repo,
                    &options.jsonnet,
                    &options.jsonnet_limits,
                )?),
            };
            objects.extend(run.evaluate(&file, repo)?);
            continue;
        }
        let text = repo.read_text(&file)?;
        let documents =
            yaml::load_documents_within(&text, repo.yaml_budget()).map_err(|source| {
                RenderError::Yaml {
                    path: file.clone(),
                    source,
                }
            })?;
        for document in documents {
            flatten(document, &file, &mut objects)?;
        }
    }
    Ok(objects)
}

fn glob_set(dir: &Path, patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern)
            .map_err(|e| RenderError::invalid(dir, format!("invalid glob '{pattern}': {e}")))?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| RenderError::invalid(dir, format!("invalid globs: {e}")))
}

fn collect(dir: &Path, repo: &RepoRoot, recurse: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    repo.check(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|source| RenderError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| RenderError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if recurse {
                collect(&path, repo, recurse, out)?;
            }
        } else if [".yaml", ".yml", ".json", ".jsonnet"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            repo.check(&path)?;
            out.push(path);
        }
    }
    Ok(())
}

pub(crate) fn flatten(document: Value, file: &Path, out: &mut Vec<Value>) -> Result<()> {
    match document {
        Value::Null => Ok(()),
        Value::Object(map) => {
            let is_list = map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"));
            match map.get("items") {
                Some(Value::Array(items)) if is_list => {
                    for item in items {
                        flatten(item.clone(), file, out)?;
                    }
                    Ok(())
                }
                _ => {
                    // Kustomization files met in a plain directory are configuration, not manifests.
                    let is_kustomize_config = map
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.starts_with("kustomize.config.k8s.io/"));
                    if !is_kustomize_config {
                        out.push(Value::Object(map));
                    }
                    Ok(())
                }
            }
        }
        _ => Err(RenderError::invalid(
            file,
            "a manifest document must be a mapping",
        )),
    }
}
