//! Repository credentials at the hub: sealed at rest with the master key, never returned by the API, and selected per cluster for delivery over its stream (only credentials of projects the hub put on that cluster).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{MasterKey, PkiError};
use crate::store::model::Redacted;
use crate::store::security::RepoCredentialRecord;
use crate::store::{AppFilter, AppQuery, SecurityStore, Store};
use edgecd_core::app::AppOrigin;

/// The secret part of a credential, sealed as JSON.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSecret {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub ssh_private_key: String,
    #[serde(default)]
    pub ssh_known_hosts: String,
}

impl std::fmt::Debug for RepoSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepoSecret(<redacted>)")
    }
}

impl RepoSecret {
    /// `ssh` or `https-basic`.
    pub fn kind(&self) -> &'static str {
        if self.ssh_private_key.is_empty() {
            "https-basic"
        } else {
            "ssh"
        }
    }
}

/// A credential opened for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCredential {
    pub url_prefix: String,
    pub secret: RepoSecret,
}

/// Notification channel: repository credentials changed (payload: URL prefix).
pub const REPO_CREDENTIALS_CHANNEL: &str = "edgecd_repo_credentials";

pub(super) fn purpose(url_prefix: &str) -> String {
    format!("repo-credential:{url_prefix}")
}

/// Seals and stores a credential for `url_prefix`, usable by `projects` (empty: all).
pub async fn put(
    security: &dyn SecurityStore,
    sealer: &MasterKey,
    url_prefix: &str,
    projects: &[String],
    secret: &RepoSecret,
) -> Result<RepoCredentialRecord, PkiError> {
    let json = serde_json::to_vec(secret).map_err(|e| PkiError::Tls(e.to_string()))?;
    let record = RepoCredentialRecord {
        url_prefix: url_prefix.to_owned(),
        projects: projects.to_vec(),
        sealed: Redacted(sealer.seal(&purpose(url_prefix), &json)?),
        updated_at: OffsetDateTime::now_utc(),
    };
    security.put_repo_credential(&record).await?;
    Ok(record)
}

/// Opens a stored credential.
pub fn open(sealer: &MasterKey, record: &RepoCredentialRecord) -> Result<RepoSecret, PkiError> {
    let json = sealer.open(&purpose(&record.url_prefix), &record.sealed.0)?;
    serde_json::from_slice(&json).map_err(|_| {
        PkiError::Seal(super::SealError::Open {
            purpose: purpose(&record.url_prefix),
        })
    })
}

/// Projects the hub itself put on `cluster`: those of the hub-defined apps
/// whose destination it is, and those of the application sets the hub scoped
/// to it (their apps are generated at the edge). Never what the spoke reports:
/// an edge-created app entitles its cluster to nothing, so a compromised spoke
/// cannot claim a project to obtain its credentials.
async fn projects_on(fleet: &dyn Store, cluster: &str) -> Result<BTreeSet<String>, PkiError> {
    let record = fleet.get_cluster(cluster).await?;
    let mut projects: BTreeSet<String> = crate::store::appsets::evaluated_at(fleet, &record)
        .await?
        .into_iter()
        .map(|set| set.project)
        .collect();
    let mut cursor = None;
    loop {
        let page = fleet
            .list_apps(&AppQuery {
                filter: AppFilter {
                    clusters: vec![cluster.to_owned()],
                    origin: Some(AppOrigin::Managed),
                    ..AppFilter::default()
                },
                sort: Default::default(),
                page_size: 1000,
                cursor: cursor.take(),
            })
            .await?;
        projects.extend(page.items.into_iter().map(|a| a.project));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(projects),
        }
    }
}

/// The credentials `cluster` may receive: those whose projects (or all
/// projects, when none are listed) have apps on it.
pub async fn for_cluster(
    fleet: &dyn Store,
    security: &dyn SecurityStore,
    sealer: &MasterKey,
    cluster: &str,
) -> Result<Vec<OpenCredential>, PkiError> {
    let projects = projects_on(fleet, cluster).await?;
    if projects.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for record in security.list_repo_credentials().await? {
        let allowed =
            record.projects.is_empty() || record.projects.iter().any(|p| projects.contains(p));
        if allowed {
            out.push(OpenCredential {
                url_prefix: record.url_prefix.clone(),
                secret: open(sealer, &record)?,
            });
        }
    }
    Ok(out)
}
