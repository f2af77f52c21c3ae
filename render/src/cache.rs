//! A bounded LRU cache of render results keyed by (repository commit, directory, options).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::RenderOptions;
use crate::error::Result;

/// Caches rendered objects so an unchanged source (same commit, path and options) is rendered once.
///
/// The least recently used entry is evicted when `capacity` is reached. Errors are not cached.
#[derive(Debug)]
pub struct RenderCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<Key, (u64, Arc<Vec<Value>>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    commit: String,
    path: PathBuf,
    options: RenderOptions,
}

impl RenderCache {
    /// A cache holding at most `capacity` results (at least one).
    pub fn new(capacity: usize) -> RenderCache {
        RenderCache {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
        }
    }

    /// Returns the cached objects for (commit, path, options), rendering with [`crate::render`] on a miss.
    pub fn render(
        &mut self,
        commit: &str,
        path: &Path,
        options: &RenderOptions,
    ) -> Result<Arc<Vec<Value>>> {
        self.get_or_insert_with(commit, path, options, || crate::render(path, options))
    }

    /// [`RenderCache::render`] with `helm` inflating `helmCharts` ([`crate::render_with`]). A render that
    /// inflated a chart is not cached: its output also depends on the chart packages fetched and the cluster's
    /// capabilities, which the inflator's own cache keys by (edgecd-helm caches by chart digest, values and
    /// capabilities), so the kustomize part is built again each time.
    pub fn render_with(
        &mut self,
        commit: &str,
        path: &Path,
        options: &RenderOptions,
        helm: Option<&dyn crate::HelmChartInflator>,
    ) -> Result<Arc<Vec<Value>>> {
        let Some(helm) = helm else {
            return self.render(commit, path, options);
        };
        if let Some(found) = self.lookup(commit, path, options) {
            return Ok(found);
        }
        let counted = Counting {
            inner: helm,
            used: std::sync::atomic::AtomicBool::new(false),
        };
        let objects = crate::render_with(path, options, Some(&counted))?;
        if counted.used.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(Arc::new(objects));
        }
        self.get_or_insert_with(commit, path, options, || Ok(objects))
    }

    /// [`RenderCache::render_with`] on a cache shared behind a mutex, which is held only to look up and to
    /// insert, never while rendering (a chart inflation can take seconds: other renders go on meanwhile).
    pub fn render_shared(
        cache: &std::sync::Mutex<RenderCache>,
        commit: &str,
        path: &Path,
        options: &RenderOptions,
        helm: Option<&dyn crate::HelmChartInflator>,
    ) -> Result<Arc<Vec<Value>>> {
        let lock = || {
            cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(found) = lock().lookup(commit, path, options) {
            return Ok(found);
        }
        let counted = helm.map(|inner| Counting {
            inner,
            used: std::sync::atomic::AtomicBool::new(false),
        });
        let objects = crate::render_with(
            path,
            options,
            counted.as_ref().map(|c| c as &dyn crate::HelmChartInflator),
        )?;
        if counted
            .as_ref()
            .is_some_and(|c| c.used.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Ok(Arc::new(objects));
        }
        lock().get_or_insert_with(commit, path, options, || Ok(objects))
    }

    fn lookup(
        &mut self,
        commit: &str,
        path: &Path,
        options: &RenderOptions,
    ) -> Option<Arc<Vec<Value>>> {
        let key = Key {
            commit: commit.to_string(),
            path: path.to_path_buf(),
            options: options.clone(),
        };
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(&key)?;
        entry.0 = tick;
        Some(Arc::clone(&entry.1))
    }

    /// Like [`RenderCache::render`] with a caller-supplied render function (used by tests and callers that
    /// render from a checkout elsewhere).
    pub fn get_or_insert_with(
        &mut self,
        commit: &str,
        path: &Path,
        options: &RenderOptions,
        render: impl FnOnce() -> Result<Vec<Value>>,
    ) -> Result<Arc<Vec<Value>>> {
        self.tick += 1;
        let key = Key {
            commit: commit.to_string(),
            path: path.to_path_buf(),
            options: options.clone(),
        };
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.0 = self.tick;
            return Ok(Arc::clone(&entry.1));
        }
        let objects = Arc::new(render()?);
        if self.entries.len() >= self.capacity
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(key, (self.tick, Arc::clone(&objects)));
        Ok(objects)
    }

    /// Number of cached results.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An inflator that records whether it was asked for anything.
struct Counting<'a> {
    inner: &'a dyn crate::HelmChartInflator,
    used: std::sync::atomic::AtomicBool,
}

impl crate::HelmChartInflator for Counting<'_> {
    fn inflate(&self, chart: &crate::ChartInflation) -> std::result::Result<Vec<Value>, String> {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        self.inner.inflate(chart)
    }

    fn repository_chart_values(
        &self,
        chart: &crate::ChartLocation,
    ) -> std::result::Result<Option<String>, String> {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        self.inner.repository_chart_values(chart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_skip_rendering_and_lru_evicts() {
        let mut cache = RenderCache::new(2);
        let options = RenderOptions::default();
        let mut renders = 0;
        for commit in ["a", "a", "b", "a", "c", "b"] {
            cache
                .get_or_insert_with(commit, Path::new("apps/web"), &options, || {
                    renders += 1;
                    Ok(vec![Value::String(commit.into())])
                })
                .unwrap();
        }
        // a (render), a (hit), b (render), a (hit), c (render, evicts b), b (render, evicts a).
        assert_eq!(renders, 4);
        assert_eq!(cache.len(), 2);
    }
}
