//! Argo CD's orphaned resources at the edge: the top-level objects of an app's destination namespace that no app tracks, found by a bounded metadata-only listing of the namespaced kinds discovery reports, for the `OrphanedResourceWarning` condition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use edgecd_core::project::OrphanedResources;
use kube::core::{ApiResource, ObjectMeta};

use crate::cluster::{ClusterError, LiveCluster};
use crate::plan::{APP_LABEL, TRACKING_ANNOTATION};

/// Most kinds listed per namespace and pass (one list call each); kinds beyond are not looked at.
pub const MAX_KINDS: usize = 100;
/// Most objects read per kind and pass (one page of metadata).
pub const PAGE: u32 = 500;
/// Most orphans named in a report; beyond, they are only counted.
pub const MAX_NAMED: usize = 200;

/// Kinds never reported, as Argo CD never watches them (its core exclusions and the default
/// `resource.exclusions` of its `argocd-cm`): created by controllers and the control plane, not by people.
const EXCLUDED_KINDS: &[(&str, &str)] = &[
    ("", "Event"),
    ("events.k8s.io", "*"),
    ("metrics.k8s.io", "*"),
    ("", "Endpoints"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("coordination.k8s.io", "Lease"),
    ("authentication.k8s.io", "*"),
    ("authorization.k8s.io", "*"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("cert-manager.io", "CertificateRequest"),
    ("cilium.io", "CiliumIdentity"),
    ("cilium.io", "CiliumEndpoint"),
    ("cilium.io", "CiliumEndpointSlice"),
    ("kyverno.io", "*Report"),
    ("kyverno.io", "UpdateRequest"),
    ("reports.kyverno.io", "*"),
    ("wgpolicyk8s.io", "*"),
    // edgecd's own state (Application and ApplicationSet CRs).
    ("edgecd.io", "*"),
];

/// Whether objects of `group`/`kind` are never reported.
pub fn excluded_kind(group: &str, kind: &str) -> bool {
    EXCLUDED_KINDS.iter().any(|(g, k)| {
        *g == group
            && (*k == "*"
                || *k == kind
                || k.strip_prefix('*')
                    .is_some_and(|suffix| kind.ends_with(suffix)))
    })
}

/// Objects Kubernetes creates in namespaces, never reported (Argo CD's known exclusions): the `default`
/// ServiceAccount, the `kube-root-ca.crt` ConfigMap and the `kubernetes` Service of `default`.
fn known_exclusion(group: &str, kind: &str, namespace: &str, name: &str) -> bool {
    group.is_empty()
        && matches!(
            (kind, name),
            ("ServiceAccount", "default") | ("ConfigMap", "kube-root-ca.crt")
        )
        || group.is_empty() && kind == "Service" && name == "kubernetes" && namespace == "default"
}

/// One object no app tracks, found in a namespace (before a project's `ignore` list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub group: String,
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{}.{} {}", self.kind, self.group, self.name)
        }
    }
}

/// Whether an object is an orphan candidate: top level (no owner), tracked by no app (no tracking annotation,
/// no app label), not being deleted, and not one Kubernetes creates itself.
pub fn is_candidate(group: &str, kind: &str, namespace: &str, meta: &ObjectMeta) -> bool {
    let name = meta.name.as_deref().unwrap_or_default();
    meta.owner_references.as_ref().is_none_or(Vec::is_empty)
        && meta.deletion_timestamp.is_none()
        && !meta
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(TRACKING_ANNOTATION))
        && !meta
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(APP_LABEL))
        && !excluded_kind(group, kind)
        && !known_exclusion(group, kind, namespace, name)
}

/// The candidates of one namespace, as one pass found them.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// At most [`MAX_NAMED`] … per kind [`PAGE`]; sorted.
    pub candidates: Vec<Candidate>,
    /// Whether some kind had more objects than were read, or kinds were left out: the count is a lower bound.
    pub partial: bool,
}

/// What an app's project makes of a namespace's listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Orphans found (a lower bound when `partial`).
    pub count: usize,
    /// The first [`MAX_NAMED`] of them.
    pub named: Vec<Candidate>,
    pub partial: bool,
}

impl Report {
    /// The listing less what `policy` ignores.
    pub fn of(listing: &Listing, policy: &OrphanedResources) -> Self {
        let orphans: Vec<&Candidate> = listing
            .candidates
            .iter()
            .filter(|c| !policy.ignores(&c.group, &c.kind, &c.name))
            .collect();
        Self {
            count: orphans.len(),
            named: orphans.into_iter().take(MAX_NAMED).cloned().collect(),
            partial: listing.partial,
        }
    }

    /// The condition message (Argo CD's wording, then the first few objects).
    pub fn message(&self) -> String {
        const SHOWN: usize = 10;
        let more = if self.partial { " or more" } else { "" };
        let mut message = format!("Application has {}{more} orphaned resources: ", self.count);
        let shown: Vec<String> = self
            .named
            .iter()
            .take(SHOWN)
            .map(|c| c.to_string())
            .collect();
        message.push_str(&shown.join(", "));
        if self.count > SHOWN {
            message.push_str(&format!(", … ({} more)", self.count - SHOWN));
        }
        message
    }
}

/// Lists the candidates of `namespace`: discovery's namespaced kinds (at most [`MAX_KINDS`], excluded kinds not
/// counted), one page of metadata each. A kind the spoke may not list (RBAC) or that fails is skipped.
#[tracing::instrument(skip_all, fields(namespace))]
pub async fn list(cluster: &LiveCluster, namespace: &str) -> Result<Listing, ClusterError> {
    let kinds = cluster.listable_namespaced_kinds().await?;
    let mut listing = Listing::default();
    let wanted: Vec<&ApiResource> = kinds
        .iter()
        .filter(|r| !excluded_kind(&r.group, &r.kind))
        .collect();
    if wanted.len() > MAX_KINDS {
        listing.partial = true;
        tracing::debug!(
            kinds = wanted.len(),
            listed = MAX_KINDS,
            "More namespaced kinds than are listed for orphans."
        );
    }
    for resource in wanted.into_iter().take(MAX_KINDS) {
        let (items, more) = match cluster.list_metadata(resource, namespace, PAGE).await {
            Ok(found) => found,
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => {
                tracing::debug!(%error, "Kind skipped when looking for orphans.");
                continue;
            }
        };
        listing.partial |= more;
        listing.candidates.extend(
            items
                .iter()
                .filter(|meta| is_candidate(&resource.group, &resource.kind, namespace, meta))
                .map(|meta| Candidate {
                    group: resource.group.clone(),
                    kind: resource.kind.clone(),
                    name: meta.name.clone().unwrap_or_default(),
                }),
        );
    }
    listing
        .candidates
        .sort_by(|a, b| (&a.group, &a.kind, &a.name).cmp(&(&b.group, &b.kind, &b.name)));
    Ok(listing)
}

/// Listings by namespace, reused for `ttl`: apps of one namespace share them, and a namespace is listed at
/// most once per `ttl` whatever the number of apps there.
#[derive(Debug, Default)]
pub struct ListingCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Listing>)>>,
}

impl ListingCache {
    /// The listing of `namespace`, listed again when older than `ttl`.
    pub async fn get(
        &self,
        cluster: &LiveCluster,
        namespace: &str,
        ttl: Duration,
    ) -> Result<Arc<Listing>, ClusterError> {
        if let Some((at, listing)) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(namespace)
            && at.elapsed() < ttl
        {
            return Ok(Arc::clone(listing));
        }
        let listing = Arc::new(list(cluster, namespace).await?);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Namespaces of deleted apps do not stay for ever.
        entries.retain(|_, (at, _)| at.elapsed() < ttl.max(Duration::from_secs(600)));
        entries.insert(namespace.to_owned(), (Instant::now(), Arc::clone(&listing)));
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edgecd_core::project::GroupKind;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn only_untracked_top_level_objects_people_create_are_candidates() {
        assert!(is_candidate("", "ConfigMap", "web", &meta("stray")));
        assert!(!is_candidate(
            "",
            "ConfigMap",
            "web",
            &meta("kube-root-ca.crt")
        ));
        assert!(!is_candidate("", "ServiceAccount", "web", &meta("default")));
        assert!(is_candidate("", "ServiceAccount", "web", &meta("robot")));
        assert!(!is_candidate("", "Service", "default", &meta("kubernetes")));
        assert!(is_candidate("", "Service", "web", &meta("kubernetes")));
        for (group, kind) in [
            ("", "Event"),
            ("events.k8s.io", "Event"),
            ("", "Endpoints"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("coordination.k8s.io", "Lease"),
            ("kyverno.io", "PolicyReport"),
            ("edgecd.io", "Application"),
        ] {
            assert!(
                !is_candidate(group, kind, "web", &meta("x")),
                "{group}/{kind}"
            );
        }
        let mut owned = meta("web-5d4f-abcde");
        owned.owner_references = Some(vec![OwnerReference {
            kind: "ReplicaSet".into(),
            name: "web-5d4f".into(),
            ..OwnerReference::default()
        }]);
        assert!(!is_candidate("", "Pod", "web", &owned));
        assert!(is_candidate("", "Pod", "web", &meta("bare")));
        let mut tracked = meta("cfg");
        tracked.annotations = Some(BTreeMap::from([(
            TRACKING_ANNOTATION.to_owned(),
            "default/web:/ConfigMap:web/cfg".to_owned(),
        )]));
        assert!(!is_candidate("", "ConfigMap", "web", &tracked));
    }

    #[test]
    fn reports_leave_out_what_the_project_ignores_and_bound_the_names() {
        let candidate = |kind: &str, name: &str| Candidate {
            group: String::new(),
            kind: kind.into(),
            name: name.into(),
        };
        let mut listing = Listing {
            candidates: vec![
                candidate("ConfigMap", "keep-me"),
                candidate("Secret", "stray"),
            ],
            partial: false,
        };
        let policy = OrphanedResources {
            warn: Some(true),
            ignore: vec![GroupKind {
                group: String::new(),
                kind: "ConfigMap".into(),
                name: "keep-*".into(),
            }],
        };
        let report = Report::of(&listing, &policy);
        assert_eq!(report.count, 1);
        assert_eq!(
            report.message(),
            "Application has 1 orphaned resources: Secret stray"
        );
        listing.candidates = (0..MAX_NAMED + 5)
            .map(|i| candidate("Secret", &format!("s{i}")))
            .collect();
        listing.partial = true;
        let report = Report::of(&listing, &policy);
        assert_eq!(report.count, MAX_NAMED + 5);
        assert_eq!(report.named.len(), MAX_NAMED);
        let message = report.message();
        assert!(message.starts_with("Application has 205 or more orphaned resources: Secret s0, "));
        assert!(message.ends_with(", … (195 more)"), "{message}");
    }
}
