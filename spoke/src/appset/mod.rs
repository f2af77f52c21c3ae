//! ApplicationSets evaluated at the edge: the `applicationsets.edgecd.io` CR (Argo CD's ApplicationSet spec, stored as JSON) and the controller that turns each set into the Application CRs it generates for this cluster.
//!
//! ```text
//!  ApplicationSet CR ─► from_json ─► git sources ─► RepoSnapshots (resolve + materialise + scan)
//!        │                                   └────► generate(ClusterFacts of this cluster) ─► plan(existing owned apps)
//!        └── status: conditions, applications, git commits        create / update / delete Application CRs ◄─┘
//! ```
//!
//! Re-evaluated when the CR or one of its apps changes, every poll interval (a moved branch is seen then),
//! on `edgecd.io/refresh`, and when the hub sends new labels for this cluster.

mod controller;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub use controller::{AppSets, run};

/// Label on generated Application CRs: the kind of their owner (`ApplicationSet`).
pub const OWNER_KIND_LABEL: &str = "edgecd.io/owner-kind";
/// Label on generated Application CRs: the name of the set that generated them (its fleet name, without the
/// project prefix of a hub-managed set's CR name).
pub const OWNER_NAME_LABEL: &str = "edgecd.io/owner-name";
/// Label on generated Application CRs: the project of the set that generated them.
pub const OWNER_PROJECT_LABEL: &str = "edgecd.io/owner-project";
/// Value of [`OWNER_KIND_LABEL`].
pub const OWNER_KIND: &str = "ApplicationSet";

/// Condition types, as Argo CD's ApplicationSet controller names them.
pub mod conditions {
    /// `True` when the last evaluation failed (invalid spec, git, a generator, a conflict); the message names the cause.
    pub const ERROR_OCCURRED: &str = "ErrorOccurred";
    /// `True` when the generators produced their parameters.
    pub const PARAMETERS_GENERATED: &str = "ParametersGenerated";
    /// `True` when every generated Application is as the set wants it.
    pub const RESOURCES_UP_TO_DATE: &str = "ResourcesUpToDate";
}

/// An ApplicationSet as stored in the edge cluster. `spec` is Argo CD's ApplicationSet spec, validated by
/// `edgecd_core::appset::ApplicationSetSpec::from_json` on every evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSet {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationSetStatus>,
}

/// What the controller last did with a set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<AppSetCondition>,
    /// Names of the Application CRs the last successful evaluation generated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The commit each git source resolved to in the last evaluation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub git_commits: Vec<GitCommitUsed>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSetCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// RFC 3339; kept while type, status, reason and message stay the same.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_transition_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitCommitUsed {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    pub revision: String,
    pub commit: String,
}

fn api_version() -> String {
    crate::crd::API_VERSION.to_owned()
}

fn kind() -> String {
    "ApplicationSet".to_owned()
}

impl ApplicationSet {
    pub fn new(name: &str, namespace: &str, spec: serde_json::Value) -> Self {
        Self {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    fn labels(&self) -> BTreeMap<String, String> {
        self.metadata.labels.clone().unwrap_or_default()
    }

    /// The set's project: its `edgecd.io/project` label (hub-managed sets), else `default`.
    pub fn project(&self) -> String {
        self.labels()
            .get(crate::crd::PROJECT_LABEL)
            .filter(|p| !p.is_empty())
            .cloned()
            .unwrap_or_else(|| "default".to_owned())
    }

    /// The set's name in the fleet: a hub-managed set's CR name without its `project.` prefix.
    pub fn set_name(&self) -> String {
        let name = self.metadata.name.clone().unwrap_or_default();
        let project = self.project();
        if self.is_hub_managed() && project != "default" {
            name.strip_prefix(&format!("{project}."))
                .map(str::to_owned)
                .unwrap_or(name)
        } else {
            name
        }
    }

    /// Written by the hub link (label `edgecd.io/origin=hub`).
    pub fn is_hub_managed(&self) -> bool {
        self.labels()
            .get(crate::crd::ORIGIN_LABEL)
            .is_some_and(|v| v == "hub")
    }
}

crate::crd::edgecd_resource!(ApplicationSet, "ApplicationSet", "applicationsets");

/// The CustomResourceDefinition of `applicationsets.edgecd.io` (also in the chart's `crds/`).
pub const APPLICATION_SET_CRD_YAML: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: applicationsets.edgecd.io
spec:
  group: edgecd.io
  names:
    kind: ApplicationSet
    listKind: ApplicationSetList
    plural: applicationsets
    singular: applicationset
    shortNames:
    - eappset
    - eappsets
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Error
      type: string
      jsonPath: .status.conditions[?(@.type=="ErrorOccurred")].status
    - name: Applications
      type: string
      jsonPath: .status.applications
      priority: 1
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

/// The CRD as JSON, ready to apply.
pub fn application_set_crd() -> serde_json::Value {
    // The constant is valid YAML (unit test below); a failure is a programming error.
    edgecd_render::yaml::load_one(APPLICATION_SET_CRD_YAML).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_parses_and_matches_the_chart() {
        let crd = application_set_crd();
        assert_eq!(crd["metadata"]["name"], "applicationsets.edgecd.io");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(
            crd["spec"]["versions"][0]["subresources"]["status"],
            serde_json::json!({})
        );
        let chart = include_str!("../../../charts/edgecd-spoke/crds/applicationsets.yaml");
        assert_eq!(
            chart, APPLICATION_SET_CRD_YAML,
            "charts/edgecd-spoke/crds/applicationsets.yaml drifted from APPLICATION_SET_CRD_YAML"
        );
    }

    #[test]
    fn hub_sets_are_named_without_their_project() {
        let mut set = ApplicationSet::new("team.addons", "edgecd-system", serde_json::json!({}));
        assert_eq!(set.project(), "default");
        assert_eq!(set.set_name(), "team.addons");
        set.metadata.labels = Some(BTreeMap::from([
            (crate::crd::ORIGIN_LABEL.to_owned(), "hub".to_owned()),
            (crate::crd::PROJECT_LABEL.to_owned(), "team".to_owned()),
        ]));
        assert_eq!(set.project(), "team");
        assert_eq!(set.set_name(), "addons");
    }
}
