//! Where an application set is evaluated: at the hub, at the spokes of named clusters, or at every cluster whose labels match a selector (a fleet-scoped set), and its stored text form.
//!
//! ```text
//!  hub                        evaluated at the hub
//!  edge-1                     at edge-1's spoke (`apply --cluster edge-1`)
//!  clusters:edge-1,edge-2     at each named cluster's spoke (`apply --clusters edge-1,edge-2`)
//!  selector:tier=edge         at each spoke whose cluster's labels match (`apply --cluster-selector tier=edge`)
//! ```
//!
//! A cluster name is a DNS label, so it never contains `:` and the forms cannot be confused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::names::ClusterName;
use crate::selector::LabelSelector;

/// The stored text of the hub scope.
pub const HUB: &str = "hub";
const CLUSTERS_PREFIX: &str = "clusters:";
const SELECTOR_PREFIX: &str = "selector:";
/// At most this many clusters are named in one scope (a selector covers more).
pub const MAX_NAMED_CLUSTERS: usize = 1_000;

/// Where a set is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSetScope {
    /// At the hub, which writes the apps the set generates.
    Hub,
    /// At the spoke of each of these clusters (one for a set applied with `--cluster`), which generates the
    /// apps of its own cluster from git.
    Clusters(BTreeSet<String>),
    /// At the spoke of every cluster whose labels match: a cluster that comes to match gets the set, one that
    /// stops matching loses it (and the apps it generated there, per the set's policy).
    Selector(LabelSelector),
}

/// A scope's text refused, naming the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope {text:?}: {message}")]
pub struct ScopeError {
    pub text: String,
    pub message: String,
}

impl AppSetScope {
    /// Parses the stored (and API) text form; see the module documentation.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let error = |message: String| ScopeError {
            text: text.chars().take(200).collect(),
            message,
        };
        if text == HUB {
            return Ok(Self::Hub);
        }
        if let Some(selector) = text.strip_prefix(SELECTOR_PREFIX) {
            let selector = LabelSelector::parse(selector).map_err(|e| error(e.to_string()))?;
            if selector.is_empty() {
                return Err(error(
                    "an empty selector would match every cluster; name the labels to match".into(),
                ));
            }
            return Ok(Self::Selector(selector));
        }
        let names = text.strip_prefix(CLUSTERS_PREFIX).unwrap_or(text);
        let mut clusters = BTreeSet::new();
        for name in names.split(',').map(str::trim) {
            if clusters.len() == MAX_NAMED_CLUSTERS {
                return Err(error(format!(
                    "more than {MAX_NAMED_CLUSTERS} clusters; use a selector"
                )));
            }
            let name = ClusterName::parse(name).map_err(|e| error(e.to_string()))?;
            clusters.insert(name.as_str().to_owned());
        }
        Ok(Self::Clusters(clusters))
    }

    /// The scope of `--cluster NAME`.
    pub fn cluster(name: &str) -> Self {
        Self::Clusters(BTreeSet::from([name.to_owned()]))
    }

    /// Whether the set is evaluated at the spoke of this cluster (its name and labels).
    pub fn includes(&self, cluster: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Hub => false,
            Self::Clusters(names) => names.contains(cluster),
            Self::Selector(selector) => selector.matches(labels),
        }
    }

    /// Whether the hub evaluates the set.
    pub fn is_hub(&self) -> bool {
        matches!(self, Self::Hub)
    }

    /// The clusters, of `clusters` (name and labels), where the set is evaluated.
    pub fn matching<'a>(&self, clusters: &'a [(String, BTreeMap<String, String>)]) -> Vec<&'a str> {
        clusters
            .iter()
            .filter(|(name, labels)| self.includes(name, labels))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Whether `self`, replacing `previous`, still reaches every cluster of `clusters` that `previous`
    /// reached: applying it again only adds clusters, so no cluster loses the apps the set generated.
    pub fn covers(&self, previous: &Self, clusters: &[(String, BTreeMap<String, String>)]) -> bool {
        match (previous, self) {
            (Self::Hub, Self::Hub) => true,
            (Self::Hub, _) | (_, Self::Hub) => false,
            (Self::Clusters(before), Self::Clusters(now)) => before.is_subset(now),
            _ => previous.matching(clusters).into_iter().all(|name| {
                clusters
                    .iter()
                    .any(|(n, labels)| n == name && self.includes(n, labels))
            }),
        }
    }

    /// Where the set is evaluated, in words: "at the hub", "at cluster edge-1's spoke", "at the spokes of
    /// clusters edge-1, edge-2", "at the spoke of every cluster matching tier=edge".
    pub fn describe(&self) -> String {
        match self {
            Self::Hub => "at the hub".into(),
            Self::Clusters(names) if names.len() == 1 => {
                format!(
                    "at cluster {}'s spoke",
                    names.iter().next().map_or("", |n| n)
                )
            }
            Self::Clusters(names) => format!(
                "at the spokes of clusters {}",
                names
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Selector(selector) => {
                format!("at the spoke of every cluster matching {selector}")
            }
        }
    }
}

impl fmt::Display for AppSetScope {
    /// The stored text form, which [`AppSetScope::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hub => f.write_str(HUB),
            Self::Clusters(names) if names.len() == 1 => {
                f.write_str(names.iter().next().map_or("", |n| n))
            }
            Self::Clusters(names) => {
                f.write_str(CLUSTERS_PREFIX)?;
                f.write_str(
                    &names
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )
            }
            Self::Selector(selector) => write!(f, "{SELECTOR_PREFIX}{selector}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn text_forms_round_trip() {
        for text in [
            "hub",
            "edge-1",
            "clusters:edge-1,edge-2",
            "selector:tier=edge",
        ] {
            let scope = AppSetScope::parse(text).unwrap();
            assert_eq!(scope.to_string(), text);
            assert_eq!(AppSetScope::parse(&scope.to_string()).unwrap(), scope);
        }
        // Order and spaces do not matter; one named cluster is the plain form.
        let scope = AppSetScope::parse("clusters: edge-2 , edge-1").unwrap();
        assert_eq!(scope.to_string(), "clusters:edge-1,edge-2");
        assert_eq!(
            AppSetScope::parse("clusters:edge-1").unwrap().to_string(),
            "edge-1"
        );
    }

    #[test]
    fn bad_scopes_name_the_cause() {
        for (text, needle) in [
            ("", "scope \"\""),
            ("Edge_1", "Edge_1"),
            ("clusters:a,,b", "scope"),
            ("selector:", "empty selector"),
            ("selector:tier in (", "selector"),
        ] {
            let error = AppSetScope::parse(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
        let many = format!(
            "clusters:{}",
            (0..=MAX_NAMED_CLUSTERS)
                .map(|i| format!("c{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let error = AppSetScope::parse(&many).unwrap_err().to_string();
        assert!(error.contains("use a selector"), "{error}");
    }

    #[test]
    fn includes_by_name_or_labels() {
        let edge = labels(&[("tier", "edge")]);
        let core = labels(&[("tier", "core")]);
        let by_name = AppSetScope::parse("clusters:a,b").unwrap();
        assert!(by_name.includes("a", &core));
        assert!(!by_name.includes("c", &edge));
        let by_label = AppSetScope::parse("selector:tier=edge").unwrap();
        assert!(by_label.includes("c", &edge));
        assert!(!by_label.includes("a", &core));
        assert!(!AppSetScope::Hub.includes("a", &edge));
    }

    #[test]
    fn a_wider_scope_covers_a_narrower_one() {
        let fleet = vec![
            ("a".to_owned(), labels(&[("tier", "edge")])),
            ("b".to_owned(), labels(&[("tier", "edge")])),
            ("c".to_owned(), labels(&[("tier", "core")])),
        ];
        let a = AppSetScope::cluster("a");
        let b = AppSetScope::cluster("b");
        let ab = AppSetScope::parse("clusters:a,b").unwrap();
        let edge = AppSetScope::parse("selector:tier=edge").unwrap();
        let core = AppSetScope::parse("selector:tier=core").unwrap();
        assert!(ab.covers(&a, &fleet));
        assert!(!b.covers(&a, &fleet), "moving is not covering");
        assert!(!a.covers(&ab, &fleet));
        assert!(edge.covers(&a, &fleet));
        assert!(edge.covers(&ab, &fleet));
        assert!(!core.covers(&a, &fleet));
        assert!(ab.covers(&edge, &fleet));
        assert!(!AppSetScope::Hub.covers(&a, &fleet));
        assert!(!a.covers(&AppSetScope::Hub, &fleet));
        assert_eq!(edge.matching(&fleet), ["a", "b"]);
    }

    #[test]
    fn descriptions() {
        assert_eq!(AppSetScope::Hub.describe(), "at the hub");
        assert_eq!(AppSetScope::cluster("a").describe(), "at cluster a's spoke");
        assert_eq!(
            AppSetScope::parse("clusters:a,b").unwrap().describe(),
            "at the spokes of clusters a, b"
        );
        assert_eq!(
            AppSetScope::parse("selector:tier=edge").unwrap().describe(),
            "at the spoke of every cluster matching tier=edge"
        );
    }
}
