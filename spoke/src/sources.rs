//! What a reconcile renders: an app's sources with the revision each is rendered at (the spec's, a sync's or a
//! history entry's), and how a multi-source app's objects are combined (Argo CD's `spec.sources`).

use edgecd_core::app::{ApplicationSource, ApplicationSpec, HistoryEntry};
use serde_json::Value;

/// The sources one reconcile renders, in order, each with the revision asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub sources: Vec<ApplicationSource>,
    /// One per source: a branch, tag, commit or chart version (empty: the source's default).
    pub revisions: Vec<String>,
    /// A multi-source app (`spec.sources`): its history entries and revisions are per source.
    pub multi: bool,
}

impl Wanted {
    /// The spec's sources at their target revisions; `sync_revision` (a sync to a given revision) replaces the
    /// revision of a single-source app and is refused for a multi-source one.
    pub fn from_spec(
        spec: &ApplicationSpec,
        sync_revision: Option<String>,
    ) -> Result<Self, String> {
        let sources = spec.sources().to_vec();
        if spec.is_multi_source() {
            if let Some(revision) = sync_revision {
                return Err(format!(
                    "sync to revision {revision:?}: a multi-source app syncs each source at its targetRevision; sync it without a revision, or change the targetRevision of the source"
                ));
            }
            let revisions = sources.iter().map(|s| s.target_revision.clone()).collect();
            return Ok(Self {
                sources,
                revisions,
                multi: true,
            });
        }
        let revision = sync_revision.unwrap_or_else(|| spec.source.target_revision.clone());
        Ok(Self {
            sources,
            revisions: vec![revision],
            multi: false,
        })
    }

    /// What a history entry deployed, for a rollback.
    pub fn from_history(entry: &HistoryEntry) -> Result<Self, String> {
        if entry.sources.is_empty() {
            return Ok(Self {
                sources: vec![entry.source.clone()],
                revisions: vec![entry.revision.clone()],
                multi: false,
            });
        }
        if entry.revisions.len() != entry.sources.len() {
            return Err(format!(
                "rollback: history entry {} has {} sources but {} revisions",
                entry.id,
                entry.sources.len(),
                entry.revisions.len()
            ));
        }
        Ok(Self {
            sources: entry.sources.clone(),
            revisions: entry.revisions.clone(),
            multi: true,
        })
    }

    /// The one source of a single-source app.
    pub fn single(&self) -> Option<(&ApplicationSource, &str)> {
        match (
            self.multi,
            self.sources.as_slice(),
            self.revisions.as_slice(),
        ) {
            (false, [source], [revision]) => Some((source, revision.as_str())),
            _ => None,
        }
    }

    /// Whether this is what the spec asks for (not a rollback or a sync to another revision).
    pub fn is_spec(&self, spec: &ApplicationSpec) -> bool {
        self.sources == spec.sources()
            && self
                .revisions
                .iter()
                .zip(spec.sources())
                .all(|(revision, source)| *revision == source.target_revision)
    }
}

/// A multi-source app's refs while its sources render: each ref's checkout (leased, so it stays on disk) and
/// commit, for `$ref/…` value files.
#[derive(Debug, Default)]
pub struct SourceRefs {
    refs: Vec<(String, crate::git::Checkout, String)>,
}

impl SourceRefs {
    /// Adds the ref `name` at `commit`.
    pub fn insert(&mut self, name: &str, checkout: crate::git::Checkout, commit: String) {
        self.refs.push((name.to_owned(), checkout, commit));
    }

    /// Each ref's name, repository root and commit.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &std::path::Path, &str)> {
        self.refs
            .iter()
            .map(|(name, checkout, commit)| (name.as_str(), checkout.root(), commit.as_str()))
    }
}

/// The key by which objects of two sources are the same object: group, kind, namespace and name.
fn object_key(object: &Value) -> (String, String, String, String) {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let api_version = text("/apiVersion");
    let group = api_version
        .rsplit_once('/')
        .map(|(group, _)| group.to_owned())
        .unwrap_or_default();
    (
        group,
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name"),
    )
}

/// The objects of a multi-source app: each source's objects in source order, an object a later source also
/// renders replaced by the later one in the earlier one's place (as Argo CD, where the last source wins). The
/// second value names the replaced objects (`Kind/namespace/name`), for a warning.
pub fn combine(per_source: Vec<Vec<Value>>) -> (Vec<Value>, Vec<String>) {
    let mut combined: Vec<Value> = Vec::new();
    let mut index: std::collections::HashMap<(String, String, String, String), usize> =
        std::collections::HashMap::new();
    let mut replaced = Vec::new();
    for objects in per_source {
        for object in objects {
            let key = object_key(&object);
            match index.get(&key) {
                Some(&at) => {
                    replaced.push(if key.2.is_empty() {
                        format!("{}/{}", key.1, key.3)
                    } else {
                        format!("{}/{}/{}", key.1, key.2, key.3)
                    });
                    combined[at] = object;
                }
                None => {
                    index.insert(key, combined.len());
                    combined.push(object);
                }
            }
        }
    }
    (combined, replaced)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn source(repo: &str, path: &str, reference: &str) -> ApplicationSource {
        ApplicationSource {
            repo_url: repo.into(),
            target_revision: "main".into(),
            path: path.into(),
            ref_name: reference.into(),
            ..ApplicationSource::default()
        }
    }

    #[test]
    fn a_single_source_app_renders_its_source_at_the_sync_revision() {
        let spec = ApplicationSpec {
            source: source("https://git.example/a", "apps/web", ""),
            ..ApplicationSpec::default()
        };
        let wanted = Wanted::from_spec(&spec, None).unwrap();
        assert_eq!(wanted.single().unwrap().1, "main");
        assert!(wanted.is_spec(&spec));
        let wanted = Wanted::from_spec(&spec, Some("v2".into())).unwrap();
        assert_eq!(wanted.single().unwrap(), (&spec.source, "v2"));
        assert!(!wanted.is_spec(&spec));
    }

    #[test]
    fn a_multi_source_app_renders_every_source_and_refuses_a_sync_revision() {
        let spec = ApplicationSpec {
            sources: vec![
                source("https://git.example/charts", "charts/web", ""),
                source("https://git.example/values", "", "values"),
            ],
            ..ApplicationSpec::default()
        };
        let wanted = Wanted::from_spec(&spec, None).unwrap();
        assert!(wanted.multi && wanted.single().is_none());
        assert_eq!(wanted.revisions, ["main", "main"]);
        assert!(wanted.is_spec(&spec));
        let refused = Wanted::from_spec(&spec, Some("v2".into())).unwrap_err();
        assert!(refused.contains("multi-source"), "{refused}");

        let entry = HistoryEntry {
            id: 3,
            revision: "a, b".into(),
            source: ApplicationSource::default(),
            sources: spec.sources.clone(),
            revisions: vec!["a".into(), "b".into()],
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            deployed_at: time::OffsetDateTime::UNIX_EPOCH,
            result: edgecd_core::app::OperationPhase::Succeeded,
            initiated_by: String::new(),
            resources: vec![],
            trace_id: String::new(),
            rollback_of: None,
        };
        let rollback = Wanted::from_history(&entry).unwrap();
        assert_eq!(rollback.revisions, ["a", "b"]);
        assert!(!rollback.is_spec(&spec));
        let broken = HistoryEntry {
            revisions: vec!["a".into()],
            ..entry
        };
        assert!(Wanted::from_history(&broken).is_err());
    }

    #[test]
    fn a_later_source_replaces_an_earlier_sources_object_in_place() {
        let cm = |name: &str, value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "web"}, "data": {"v": value}});
        let deploy =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}});
        let (objects, replaced) = combine(vec![
            vec![cm("a", "first"), deploy.clone()],
            vec![cm("b", "second"), cm("a", "last")],
        ]);
        assert_eq!(objects, vec![cm("a", "last"), deploy, cm("b", "second")]);
        assert_eq!(replaced, ["ConfigMap/web/a"]);
        // The same name in another group is another object.
        let other = json!({"apiVersion": "example.io/v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "web"}});
        let (objects, replaced) = combine(vec![vec![cm("a", "x")], vec![other]]);
        assert_eq!(objects.len(), 2);
        assert!(replaced.is_empty());
    }
}
