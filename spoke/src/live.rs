//! The live index: the resourceVersion of every managed object (label `edgecd.io/app`), kept current by one metadata-only watcher per kind, so an unchanged app can be recognised without reading its objects again.
//!
//! Only `(namespace, name) → resourceVersion` is kept per kind (no object bodies), so the memory is bounded by
//! the number of managed objects. A kind is *ready* once its watcher has listed every object; until then,
//! and while it re-lists after a watch error, lookups answer "unknown" and callers fall back to reading the
//! objects.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use edgecd_core::app::ResourceKey;

/// (group, kind): the versions of one kind share their objects and resourceVersions.
type KindId = (String, String);
/// (namespace, name); the namespace is empty for cluster-scoped objects.
type ObjectId = (String, String);

#[derive(Debug, Default)]
struct KindIndex {
    /// Whether `objects` holds a complete listing.
    ready: bool,
    objects: HashMap<ObjectId, String>,
    /// A listing in progress (replaces `objects` when done).
    listing: Option<HashMap<ObjectId, String>>,
}

/// resourceVersions of managed objects, by kind.
#[derive(Debug, Default)]
pub struct LiveIndex {
    kinds: Mutex<HashMap<KindId, KindIndex>>,
}

fn kind_id(group: &str, kind: &str) -> KindId {
    (group.to_owned(), kind.to_owned())
}

impl LiveIndex {
    /// The object's resourceVersion as last seen by its kind's watcher: `Some(None)` when it does not exist
    /// (or is not labelled as managed), `None` when the kind is not (or not yet fully) watched.
    pub fn resource_version(&self, key: &ResourceKey) -> Option<Option<String>> {
        let kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let index = kinds.get(&kind_id(&key.group, &key.kind))?;
        if !index.ready {
            return None;
        }
        Some(
            index
                .objects
                .get(&(key.namespace.clone(), key.name.clone()))
                .cloned(),
        )
    }

    /// Objects indexed, over all kinds (for metrics and tests).
    pub fn len(&self) -> usize {
        self.kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|k| k.objects.len())
            .sum()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with_kind<R>(&self, group: &str, kind: &str, f: impl FnOnce(&mut KindIndex) -> R) -> R {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        f(kinds.entry(kind_id(group, kind)).or_default())
    }

    /// A (re-)listing of the kind starts: lookups answer "unknown" until it is done.
    pub fn list_started(&self, group: &str, kind: &str) {
        self.with_kind(group, kind, |k| {
            k.ready = false;
            k.listing = Some(HashMap::new());
        });
    }

    /// One object of the listing in progress.
    pub fn listed(&self, group: &str, kind: &str, namespace: &str, name: &str, version: &str) {
        self.with_kind(group, kind, |k| {
            k.listing
                .get_or_insert_with(HashMap::new)
                .insert((namespace.to_owned(), name.to_owned()), version.to_owned());
        });
    }

    /// The listing is complete: it replaces what was known.
    pub fn list_done(&self, group: &str, kind: &str) {
        self.with_kind(group, kind, |k| {
            k.objects = k.listing.take().unwrap_or_default();
            k.objects.shrink_to_fit();
            k.ready = true;
        });
    }

    /// An object was created or changed.
    pub fn applied(&self, group: &str, kind: &str, namespace: &str, name: &str, version: &str) {
        self.with_kind(group, kind, |k| {
            k.objects
                .insert((namespace.to_owned(), name.to_owned()), version.to_owned());
        });
    }

    /// An object was deleted (or lost its label).
    pub fn deleted(&self, group: &str, kind: &str, namespace: &str, name: &str) {
        self.with_kind(group, kind, |k| {
            k.objects.remove(&(namespace.to_owned(), name.to_owned()));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ResourceKey {
        ResourceKey {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: "web".into(),
            name: name.into(),
        }
    }

    #[test]
    fn unknown_until_listed_then_follows_events() {
        let index = LiveIndex::default();
        assert_eq!(index.resource_version(&key("a")), None);
        index.list_started("apps", "Deployment");
        index.listed("apps", "Deployment", "web", "a", "1");
        assert_eq!(index.resource_version(&key("a")), None);
        index.list_done("apps", "Deployment");
        assert_eq!(index.resource_version(&key("a")), Some(Some("1".into())));
        assert_eq!(index.resource_version(&key("b")), Some(None));
        index.applied("apps", "Deployment", "web", "a", "2");
        assert_eq!(index.resource_version(&key("a")), Some(Some("2".into())));
        index.deleted("apps", "Deployment", "web", "a");
        assert_eq!(index.resource_version(&key("a")), Some(None));
        // A re-list makes the kind unknown again until it completes, then replaces everything.
        index.applied("apps", "Deployment", "web", "c", "3");
        index.list_started("apps", "Deployment");
        assert_eq!(index.resource_version(&key("c")), None);
        index.list_done("apps", "Deployment");
        assert_eq!(index.resource_version(&key("c")), Some(None));
    }
}
