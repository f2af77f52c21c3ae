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
