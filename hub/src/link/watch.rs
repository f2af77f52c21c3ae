//! The replica's watch over what its sessions would otherwise poll: one read a heartbeat finds the clusters with commands to deliver, edited projects and application sets, and relabelled clusters, and wakes only the sessions concerned.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::store::{AppSetRecord, LinkWatch, ProjectRecord, SettingsMark, Store, StoreError};

/// The projects and application sets as the watch last read them: a session's handshake pass, and the pass
/// the watch wakes it for after an edit, take them from here instead of reading them itself (at 10,000 spokes,
/// two reads each). At most one watch pass old; a change since then moves the mark, and the next pass reads
/// them again before it wakes every session.
#[derive(Debug, Default)]
pub struct SettingsCache {
    current: RwLock<Option<Arc<Settings>>>,
}

/// One read of the projects and application sets.
#[derive(Debug)]
pub struct Settings {
    pub projects: HashMap<String, ProjectRecord>,
    pub appsets: Vec<AppSetRecord>,
}

impl SettingsCache {
    /// The last read, if there was one.
    pub fn current(&self) -> Option<Arc<Settings>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads them again; on an error, forgets the last read (sessions read for themselves meanwhile).
    pub(super) async fn refresh(&self, store: &dyn Store) -> Result<(), StoreError> {
        let read = async {
            let projects = store.list_projects().await?;
            let appsets = store.appsets().list_appsets(&[], None).await?;
            Ok::<_, StoreError>(Settings {
                projects: projects.into_iter().map(|p| (p.name.clone(), p)).collect(),
                appsets,
            })
        }
        .await;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        match read {
            Ok(settings) => {
                *current = Some(Arc::new(settings));
                Ok(())
            }
            Err(error) => {
                *current = None;
                Err(error)
            }
        }
    }
}

/// What one read of the watch asks of the sessions held here.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Wake {
    /// Clusters with a command to deliver: their sessions send what they have not sent yet.
    pub commands: Vec<String>,
    /// Every session re-checks its project policies, application sets and credentials.
    pub settings_everywhere: bool,
    /// The sessions of these clusters re-check them (the cluster's labels or annotations changed).
    pub settings: Vec<String>,
}

/// What the previous read saw.
#[derive(Debug, Default)]
pub(super) struct Watch {
    settings: Option<SettingsMark>,
    clusters: HashMap<String, u64>,
}

impl Watch {
    /// Forgets the settings' mark, so that the next read wakes every session (and reads them) again.
    pub(super) fn forget_settings(&mut self) {
        self.settings = None;
    }

    /// What changed since the previous read. The first read wakes every session: one that read its settings
    /// before it, and saw them change in between, would otherwise never hear of the change. A cluster not in
    /// the previous read is woken for the same reason.
    pub(super) fn read(&mut self, seen: LinkWatch) -> Wake {
        let settings_everywhere = self.settings != Some(seen.settings);
        let first = self.settings.is_none();
        self.settings = Some(seen.settings);
        let mut settings = Vec::new();
        let mut clusters = HashMap::with_capacity(seen.cluster_versions.len());
        for (name, version) in seen.cluster_versions {
            if !first && self.clusters.get(&name) != Some(&version) {
                settings.push(name.clone());
            }
            clusters.insert(name, version);
        }
        self.clusters = clusters;
        Wake {
            commands: seen.clusters_with_commands,
            settings_everywhere,
            settings: if settings_everywhere {
                Vec::new()
            } else {
                settings
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(projects: i64, clusters: &[(&str, u64)], commands: &[&str]) -> LinkWatch {
        LinkWatch {
            clusters_with_commands: commands.iter().map(|c| (*c).to_owned()).collect(),
            settings: SettingsMark {
                projects: (1, projects, 0),
                appsets: (0, 0, 0),
            },
            cluster_versions: clusters
                .iter()
                .map(|(name, version)| ((*name).to_owned(), *version))
                .collect(),
        }
    }

    #[test]
    fn wakes_only_the_sessions_a_change_concerns() {
        let mut watch = Watch::default();
        let first = watch.read(seen(1, &[("a", 1), ("b", 1)], &[]));
        assert!(first.settings_everywhere, "the first read wakes everyone");

        let quiet = watch.read(seen(1, &[("a", 1), ("b", 1)], &["b"]));
        assert_eq!(
            quiet,
            Wake {
                commands: vec!["b".into()],
                settings_everywhere: false,
                settings: vec![],
            }
        );

        let relabelled = watch.read(seen(1, &[("a", 2), ("b", 1), ("c", 1)], &[]));
        assert!(!relabelled.settings_everywhere);
        let mut woken = relabelled.settings;
        woken.sort();
        assert_eq!(woken, vec!["a".to_owned(), "c".to_owned()]);

        let edited = watch.read(seen(2, &[("a", 2), ("b", 1), ("c", 1)], &[]));
        assert!(edited.settings_everywhere, "a project edit wakes everyone");
        assert!(edited.settings.is_empty());
    }
}
