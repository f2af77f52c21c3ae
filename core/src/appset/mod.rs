//! Argo CD–compatible ApplicationSets: the spec, its strict validation, generators (list, clusters, git, matrix, merge), fasttemplate or Go-template rendering and the create/update/delete plan.
//!
//! ```text
//!  from_json ── strict key walk (check) ─► ApplicationSetSpec
//!  generate ─── generators → param sets ─► render template ─► GeneratedApp (sorted)
//!  plan ─────── existing apps × generated apps × policy ─► Plan
//! ```
//!
//! Both of Argo CD's template modes: "fasttemplate" (`{{param}}` over flat string parameters, the default) and
//! `goTemplate: true` (Go `text/template` with sprig over nested parameters, through `edgecd-gotmpl`). Generators
//! shape their parameters per mode exactly as Argo CD's do.

mod check;
mod decisions;
mod eval;
mod glob;
mod plan;
pub mod rollout;
pub mod scope;
mod template;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::app::ApplicationSpec;
use crate::selector::LabelSelector;

pub use decisions::{DECISION_CONFIG_KEYS, check_config as check_decision_config};
pub use eval::{Generation, generate, generate_each};
pub use glob::glob_match;
pub use plan::plan;
pub use scope::{AppSetScope, ScopeError};
pub use template::{flatten_params, render_str, sanitize_name};

/// One generator's parameter set. In fasttemplate mode every value is a string under a flat, dotted key
/// (`metadata.labels.zone`); with `goTemplate` values nest as Argo CD's generators produce them
/// (`{"metadata": {"labels": {"zone": …}}}`, numbers as JSON numbers).
pub type Params = serde_json::Map<String, serde_json::Value>;

/// An ApplicationSet spec refused or failing to generate; `path` names the field (`spec.generators[0].git.directories[1].path`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AppSetError {
    pub path: String,
    pub message: String,
}

impl AppSetError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Argo CD ApplicationSet `spec`, in the camelCase JSON shape of Argo's YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSpec {
    pub generators: Vec<Generator>,
    pub template: AppTemplate,
    /// Render with Go's `text/template` and sprig instead of fasttemplate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub go_template: bool,
    /// `missingkey=default|invalid|zero|error`, as Go's `Template.Option`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub go_template_options: Vec<String>,
    /// A Go template rendering to YAML, merged into each generated Application (JSON merge semantics; the project cannot be changed by it). Only with `goTemplate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_patch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<AppSetSyncPolicy>,
    /// Labels and annotations of generated apps that the set leaves as they are on update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserved_fields: Option<PreservedFields>,
    /// Fields of generated apps the set does not overwrite once the app exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_application_differences: Vec<AppDifferenceIgnore>,
    /// `AllAtOnce` (unset) or a progressive `RollingSync` (hub-evaluated sets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<rollout::Strategy>,
}

/// Argo's `preservedFields`: keys of labels and annotations kept from the existing app on update.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PreservedFields {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// One `ignoreApplicationDifferences` rule: the apps it covers (`name`, `names`; none: every app) and the fields, by JSON pointer (into the Application: `/spec/source/targetRevision`) or jq path expression (`.spec.source.helm.values`), whose existing values win over the generated ones.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDifferenceIgnore {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    /// jq path expressions (`.spec.source.helm.values`), checked as the spoke's `ignoreDifferences` ones are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSetSyncPolicy {
    /// Keep the generated apps' cluster resources when the set (or an app) is deleted.
    #[serde(default)]
    pub preserve_resources_on_deletion: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications_sync: Option<ApplicationsSyncPolicy>,
}

/// What the set may do to the apps it generated (Argo's `syncPolicy.applicationsSync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ApplicationsSyncPolicy {
    #[serde(rename = "create-only")]
    CreateOnly,
    #[serde(rename = "create-update")]
    CreateUpdate,
    #[serde(rename = "create-delete")]
    CreateDelete,
    #[default]
    #[serde(rename = "sync")]
    Sync,
}

impl ApplicationsSyncPolicy {
    pub fn allows_update(self) -> bool {
        matches!(self, Self::CreateUpdate | Self::Sync)
    }

    pub fn allows_delete(self) -> bool {
        matches!(self, Self::CreateDelete | Self::Sync)
    }
}

/// The Application template; `spec` stays JSON because placeholders may sit anywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppTemplate {
    pub metadata: TemplateMeta,
    pub spec: serde_json::Value,
}

/// A generator's own `template`: whatever it sets wins over the set's `spec.template`, field by field (Argo CD merges them so); empty fields come from the set's template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GeneratorTemplate {
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub spec: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TemplateMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Accepted and ignored (edgecd always cleans up per `preserveResourcesOnDeletion`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// One generator: its kind, externally tagged by Argo's key (`- list: {...}`), and an optional post-filter
/// `selector` over each parameter set (flattened to dotted keys, as Argo CD matches it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    #[serde(flatten)]
    pub kind: GeneratorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

impl From<GeneratorKind> for Generator {
    fn from(kind: GeneratorKind) -> Self {
        Self {
            kind,
            selector: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GeneratorKind {
    List(ListGenerator),
    Clusters(ClustersGenerator),
    Git(GitGenerator),
    Matrix(MatrixGenerator),
    Merge(MergeGenerator),
    ClusterDecisionResource(ClusterDecisionResourceGenerator),
}

impl GeneratorKind {
    /// The generator's own `template`, if it has one.
    pub fn template(&self) -> Option<&GeneratorTemplate> {
        match self {
            Self::List(g) => g.template.as_ref(),
            Self::Clusters(g) => g.template.as_ref(),
            Self::Git(g) => g.template.as_ref(),
            Self::Matrix(g) => g.template.as_ref(),
            Self::Merge(g) => g.template.as_ref(),
            Self::ClusterDecisionResource(g) => g.template.as_ref(),
        }
    }
}

/// Argo CD's `clusterDecisionResource` generator: the clusters a placement decided, read from "duck-typed"
/// resources (Open Cluster Management's `PlacementDecision`, or any kind with a list of decisions in its
/// status). The ConfigMap `configMapRef` names the kind (`apiVersion`, `kind`), the status list
/// (`statusListKey`, default `clusters`) and the key of each decision that names a cluster (`matchKey`).
/// At the hub, the ConfigMap and the resources are those applied to it ([`DecisionLookup`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDecisionResourceGenerator {
    pub config_map_ref: String,
    /// One resource by name; or, empty, those `label_selector` selects (exactly one of the two is set).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "LabelSelector::is_empty")]
    pub label_selector: LabelSelector,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// Accepted; the hub evaluates a set again whenever a decision resource changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<GeneratorTemplate>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListGenerator {
    #[serde(default)]
    pub elements: Vec<serde_json::Map<String, serde_json::Value>>,
    /// A YAML list of elements, appended to `elements` (typically rendered from another generator's parameters in a matrix).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub elements_yaml: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<GeneratorTemplate>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClustersGenerator {
    /// Empty selects every cluster.
    #[serde(default, skip_serializing_if = "LabelSelector::is_empty")]
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// One parameter set `{clusters: [every cluster's parameters]}` instead of one per cluster.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flat_list: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<GeneratorTemplate>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitGenerator {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    #[serde(default)]
    pub revision: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directories: Vec<GitDirectoryItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<GitFileItem>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_param_prefix: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<GeneratorTemplate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GitDirectoryItem {
    pub path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GitFileItem {
    pub path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MatrixGenerator {
    pub generators: Vec<Generator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<GeneratorTemplate>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeGenerator {
    pub merge_keys: Vec<String>,
    pub generators: Vec<Generator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<GeneratorTemplate>,
}

impl ApplicationSetSpec {
    /// Strict check of a raw Argo `spec` JSON value, then deserialization: unknown or unsupported fields are refused naming their path (rooted at `spec`).
    pub fn from_json(spec: &serde_json::Value) -> Result<Self, AppSetError> {
        check::check_spec(spec, "spec")?;
        serde_json::from_value(spec.clone()).map_err(|e| AppSetError::new("spec", e.to_string()))
    }

    /// Git (repo URL, revision) pairs whose trees [`generate`] will ask for, matrix and merge children included; pairs that still hold a `{{placeholder}}` (resolved only while generating) are left out.
    pub fn git_sources(&self) -> Vec<(String, String)> {
        fn walk(generators: &[Generator], out: &mut Vec<(String, String)>) {
            for g in generators {
                match &g.kind {
                    GeneratorKind::Git(git) => {
                        if !git.repo_url.contains("{{") && !git.revision.contains("{{") {
                            let pair = (git.repo_url.clone(), git.revision.clone());
                            if !out.contains(&pair) {
                                out.push(pair);
                            }
                        }
                    }
                    GeneratorKind::Matrix(m) => walk(&m.generators, out),
                    GeneratorKind::Merge(m) => walk(&m.generators, out),
                    GeneratorKind::List(_)
                    | GeneratorKind::Clusters(_)
                    | GeneratorKind::ClusterDecisionResource(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.generators, &mut out);
        out
    }

    /// Whether the set uses anything the protocol's typed summary of a set cannot carry (Go templates, a
    /// template patch, generator selectors or templates, `elementsYaml`, `flatList`, preserved fields, ignored
    /// differences, a strategy): such a set travels as its JSON spec only.
    pub fn needs_full_spec(&self) -> bool {
        fn walk(generators: &[Generator]) -> bool {
            generators.iter().any(|g| {
                g.selector.is_some()
                    || g.kind.template().is_some()
                    || match &g.kind {
                        GeneratorKind::List(l) => !l.elements_yaml.is_empty(),
                        GeneratorKind::Clusters(c) => c.flat_list,
                        GeneratorKind::Git(_) => false,
                        GeneratorKind::Matrix(m) => walk(&m.generators),
                        GeneratorKind::Merge(m) => walk(&m.generators),
                        GeneratorKind::ClusterDecisionResource(_) => true,
                    }
            })
        }
        self.go_template
            || !self.go_template_options.is_empty()
            || self.template_patch.is_some()
            || self.preserved_fields.is_some()
            || !self.ignore_application_differences.is_empty()
            || self.strategy.is_some()
            || walk(&self.generators)
    }

    /// Whether a generator (matrix and merge children included) reads decision resources
    /// (`clusterDecisionResource`).
    pub fn uses_decision_resources(&self) -> bool {
        fn walk(generators: &[Generator]) -> bool {
            generators.iter().any(|g| match &g.kind {
                GeneratorKind::ClusterDecisionResource(_) => true,
                GeneratorKind::Matrix(m) => walk(&m.generators),
                GeneratorKind::Merge(m) => walk(&m.generators),
                GeneratorKind::List(_) | GeneratorKind::Clusters(_) | GeneratorKind::Git(_) => {
                    false
                }
            })
        }
        walk(&self.generators)
    }

    /// The steps of a progressive sync (`strategy.type: RollingSync`); `None` when every app syncs on its
    /// own policy.
    pub fn rolling_steps(&self) -> Option<&[rollout::RolloutStep]> {
        self.strategy.as_ref()?.rolling_steps()
    }

    /// Why the set can only be evaluated at the hub (it reads decision resources, or rolls its apps out
    /// across clusters), if it can.
    pub fn hub_only(&self) -> Option<&'static str> {
        if self.uses_decision_resources() {
            Some(
                "its clusterDecisionResource generator reads decision resources applied to the hub",
            )
        } else if self.rolling_steps().is_some() {
            Some(
                "its RollingSync strategy gates each step on the health of the apps of the steps before it, which only the hub sees across clusters",
            )
        } else {
            None
        }
    }

    /// The policy in effect (`sync` when unset).
    pub fn applications_sync(&self) -> ApplicationsSyncPolicy {
        self.sync_policy
            .as_ref()
            .and_then(|p| p.applications_sync)
            .unwrap_or_default()
    }
}

/// What the clusters generator knows about one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterFacts {
    pub name: String,
    pub server: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A snapshot of one repository at one revision (adapters implement it over a checkout). Paths are relative to the repository root, `/`-separated, without a leading `./`.
pub trait RepoFiles {
    /// Every directory of the tree (the root excluded).
    fn directories(&self) -> Vec<String>;
    /// Every file of the tree.
    fn files(&self) -> Vec<String>;
    /// The parsed JSON/YAML document at `path` (the adapter parses YAML safely).
    fn read_document(&self, path: &str) -> Result<serde_json::Value, String>;
}

/// Resolves a (repository, revision) to its tree.
pub trait GitLookup {
    fn repo(&self, repo_url: &str, revision: &str) -> Result<&dyn RepoFiles, String>;
}

/// One resource the `clusterDecisionResource` generator reads: its name, labels and `status`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionResource {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub status: serde_json::Value,
}

/// What the `clusterDecisionResource` generator reads (at the hub: the ConfigMaps and decision resources
/// applied to it).
pub trait DecisionLookup {
    /// The `data` of the ConfigMap `name`, if there is one.
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>>;
    /// Every resource of `api_version` and `kind`, by name.
    fn resources(&self, api_version: &str, kind: &str) -> Vec<DecisionResource>;
}

/// No ConfigMaps and no decision resources (where none are held: a spoke).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDecisions;

impl DecisionLookup for NoDecisions {
    fn config_map(&self, _name: &str) -> Option<BTreeMap<String, String>> {
        None
    }

    fn resources(&self, _api_version: &str, _kind: &str) -> Vec<DecisionResource> {
        Vec::new()
    }
}

/// Everything generators read.
pub struct EvalContext<'a> {
    pub clusters: &'a [ClusterFacts],
    pub git: &'a dyn GitLookup,
    pub decisions: &'a dyn DecisionLookup,
}

impl std::fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext")
            .field("clusters", &self.clusters)
            .finish_non_exhaustive()
    }
}

/// One Application produced by the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedApp {
    pub name: String,
    /// From the rendered `spec.project`; empty becomes `default`.
    pub project: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub spec: ApplicationSpec,
    /// The parameter set it was rendered from.
    pub params: Params,
}

/// An Application that exists now, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingApp {
    pub name: String,
    pub project: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub spec: ApplicationSpec,
    /// Whether this set created it (owner reference); others are never touched.
    pub owned_by_this_set: bool,
}

/// What to do to reach the generated state. Every list is sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub create: Vec<GeneratedApp>,
    pub update: Vec<GeneratedApp>,
    pub delete: Vec<String>,
    /// Owned apps left as they are: up to date, or changes/removals the policy does not allow.
    pub unchanged: Vec<String>,
    /// (name, why): an app with a generated name exists but is not owned by this set; never touched.
    pub conflicts: Vec<(String, String)>,
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;
