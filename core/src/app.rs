//! Applications: desired spec and reported status, in Argo CD's vocabulary and JSON field names (the shape of the `applications.edgecd.io` CRD and of the hub's stored spec).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::duration::GoDuration;
use crate::status::{Health, SyncStatus};

/// Label on an application whose cluster resources stay when the application is deleted
/// (an ApplicationSet's `preserveResourcesOnDeletion`); the spoke deletes only the CR.
pub const PRESERVE_RESOURCES_LABEL: &str = "edgecd.io/preserve-resources-on-deletion";

/// Where the manifests come from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSource {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Branch, tag, commit or `HEAD`; empty means `HEAD`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_revision: String,
    /// Directory in the repository; empty means the root.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeSource>,
    /// A chart name in the Helm chart repository `repoURL`; `targetRevision` is then the chart version or a
    /// semver range (empty: the latest stable version). Empty for git sources.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chart: String,
    /// Helm options; a git source with them renders the chart directory `path` with `helm template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// Multi-source apps (Argo CD's `sources[].ref`): the name other sources' Helm value files use for this
    /// source's checkout (`$name/path/values.yaml`). A source with a ref and neither `path` nor `chart` is
    /// only a place values come from: it is not rendered.
    #[serde(rename = "ref", default, skip_serializing_if = "String::is_empty")]
    pub ref_name: String,
    /// Multi-source apps: a name for the source, shown with it (Argo CD's `sources[].name`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Argo CD's `spec.source.helm`: how `helm template` renders the chart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmSource {
    /// The release name; empty means the app's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_name: String,
    /// Values files, relative to the chart directory (`../` allowed up to the repository root), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_files: Vec<String>,
    /// Values as a YAML document, applied after the files.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub values: String,
    /// Values as an object; wins over `values` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_object: Option<serde_json::Value>,
    /// `--set` (or `--set-string` with `forceString`) parameters, applied after the values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<HelmParameter>,
    /// `--set-file` parameters: a value read from a file of the repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_parameters: Vec<HelmFileParameter>,
    /// Leave the chart's `crds/` out (`--skip-crds`); by default they are rendered (`--include-crds`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_crds: bool,
    /// `--skip-schema-validation`: the chart's `values.schema.json` is not checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_schema_validation: bool,
    /// `--skip-tests`: test hooks are left out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_tests: bool,
    /// The release namespace (`.Release.Namespace`); empty means the destination namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// `.Capabilities.KubeVersion`; empty means the destination cluster's own version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    /// `.Capabilities.APIVersions` (`group/version` or `group/version/Kind`); empty means the destination
    /// cluster's own, from discovery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_versions: Vec<String>,
    /// Send the chart repository's credentials also to other hosts the index points the chart to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pass_credentials: bool,
    /// A missing values file is skipped instead of failing the render.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_missing_value_files: bool,
    /// Argo CD's Helm version (`v3`); kept, edgecd renders with Helm v4 (v3 chart semantics).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// One `helm.parameters` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmParameter {
    pub name: String,
    #[serde(default)]
    pub value: String,
    /// `--set-string` instead of `--set` (the value stays a string).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_string: bool,
}

/// One `helm.fileParameters` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmFileParameter {
    pub name: String,
    pub path: String,
}

/// Plain-manifest directory options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    #[serde(default)]
    pub recurse: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub include: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exclude: String,
    /// Argo CD's `directory.jsonnet`: how the directory's `.jsonnet` files are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonnet: Option<JsonnetOptions>,
}

/// Argo CD's `directory.jsonnet` options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonnetOptions {
    /// `std.extVar` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext_vars: Vec<JsonnetVar>,
    /// Top-level arguments of a program that is a function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlas: Vec<JsonnetVar>,
    /// Library search paths, relative to the repository root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libs: Vec<String>,
}

/// A Jsonnet external variable or top-level argument: a string, or Jsonnet code when `code` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JsonnetVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub code: bool,
}

impl JsonnetOptions {
    /// The renderer's options, with Argo CD's build environment substituted in the values (as Argo CD does
    /// before evaluating).
    pub fn render_options(&self, env: &BuildEnv) -> edgecd_render::JsonnetOptions {
        let vars = |vars: &[JsonnetVar]| {
            vars.iter()
                .map(|v| edgecd_render::JsonnetVar {
                    name: v.name.clone(),
                    value: env.envsubst(&v.value),
                    code: v.code,
                })
                .collect()
        };
        edgecd_render::JsonnetOptions {
            ext_vars: vars(&self.ext_vars),
            tlas: vars(&self.tlas),
            libs: self.libs.clone(),
        }
    }
}

impl DirectorySource {
    /// The `include` globs: Argo CD's `{a,b}` or `a,b` lists, one glob each.
    pub fn include_globs(&self) -> Vec<String> {
        split_globs(&self.include)
    }

    /// The `exclude` globs, as [`include_globs`](Self::include_globs).
    pub fn exclude_globs(&self) -> Vec<String> {
        split_globs(&self.exclude)
    }
}

impl ApplicationSource {
    /// Whether this source is a Helm chart: from a chart repository (`chart`) or a chart directory in git
    /// (`helm` options given).
    pub fn is_helm(&self) -> bool {
        !self.chart.is_empty() || self.helm.is_some()
    }

    /// Whether this source is an OCI artifact (Argo CD's OCI sources): an `oci://` `repoURL` naming the
    /// artifact itself, without a `chart`; `targetRevision` is its tag and `path` a directory inside it.
    pub fn is_oci_artifact(&self) -> bool {
        self.chart.is_empty() && is_oci_url(&self.repo_url)
    }

    /// Whether this is the unset source of a multi-source spec (no repository).
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }

    /// Whether this source's objects are part of the app: every source but a `ref` with neither `path` nor
    /// `chart`, which only provides value files to the others (as Argo CD).
    pub fn is_rendered(&self) -> bool {
        self.ref_name.is_empty() || !self.path.is_empty() || !self.chart.is_empty()
    }

    /// How to render this source checked out under `repo_root`: the
    /// directory options (include/exclude globs, recurse) and the
    /// `kustomize` options, which the renderer applies to the kustomization
    /// as Argo CD does with `kustomize edit`. The spoke and the hub (app of
    /// apps) render with these. Without a build environment, `$VAR`s in
    /// kustomize values are replaced by nothing (see [`render_options_in`](Self::render_options_in)).
    pub fn render_options(&self, repo_root: std::path::PathBuf) -> edgecd_render::RenderOptions {
        self.render_options_in(repo_root, &BuildEnv::default())
    }

    /// [`render_options`](Self::render_options) with Argo CD's build environment (`ARGOCD_APP_NAME`, …)
    /// substituted in `commonLabels`, `images` and (with `commonAnnotationsEnvsubst`) `commonAnnotations`.
    pub fn render_options_in(
        &self,
        repo_root: std::path::PathBuf,
        env: &BuildEnv,
    ) -> edgecd_render::RenderOptions {
        let mut options = edgecd_render::RenderOptions {
            repo_root: Some(repo_root),
            ..edgecd_render::RenderOptions::default()
        };
        if let Some(directory) = &self.directory {
            options.include = directory.include_globs();
            options.exclude = directory.exclude_globs();
            options.recurse = directory.recurse;
            if let Some(jsonnet) = &directory.jsonnet {
                options.jsonnet = jsonnet.render_options(env);
            }
        }
        options.kustomize = self.kustomize.as_ref().map(|k| k.edits_in(env));
        options
    }
}

/// Argo CD's build environment: the variables a source's kustomize values may name (`$ARGOCD_APP_NAME`,
/// `${ARGOCD_APP_REVISION}`, …), substituted as Go's `os.Expand` does (unknown names become empty, `$$` is `$`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildEnv(pub BTreeMap<String, String>);

impl BuildEnv {
    /// The variables Argo CD sets for an app rendered at `revision`.
    pub fn for_app(
        name: &str,
        namespace: &str,
        project: &str,
        revision: &str,
        source: &ApplicationSource,
    ) -> Self {
        let short = |n: usize| revision.get(..n).unwrap_or(revision).to_owned();
        let pairs = [
            ("ARGOCD_APP_NAME", name.to_owned()),
            ("ARGOCD_APP_NAMESPACE", namespace.to_owned()),
            ("ARGOCD_APP_PROJECT_NAME", project.to_owned()),
            ("ARGOCD_APP_REVISION", revision.to_owned()),
            ("ARGOCD_APP_REVISION_SHORT", short(7)),
            ("ARGOCD_APP_REVISION_SHORT_8", short(8)),
            ("ARGOCD_APP_SOURCE_REPO_URL", source.repo_url.clone()),
            ("ARGOCD_APP_SOURCE_PATH", source.path.clone()),
            (
                "ARGOCD_APP_SOURCE_TARGET_REVISION",
                source.target_revision.clone(),
            ),
        ];
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// `text` with `$NAME` and `${NAME}` replaced. Without a build environment (an empty one: a caller that
    /// does not know the app) the text is left as written rather than emptied.
    pub fn envsubst(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => {
                        out.push_str(self.0.get(&braced[..end]).map_or("", String::as_str));
                        rest = &braced[end + 1..];
                    }
                    // Go drops a `${` without its closing brace.
                    None => rest = "",
                }
                continue;
            }
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                continue;
            }
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                // A lone `$` (before a space, a symbol or the end) stays as Go leaves it.
                out.push('$');
                rest = after;
            } else {
                out.push_str(self.0.get(&after[..end]).map_or("", String::as_str));
                rest = &after[end..];
            }
        }
        out.push_str(rest);
        out
    }
}

impl KustomizeSource {
    /// These options as the renderer's kustomization edits (no build environment).
    pub fn edits(&self) -> edgecd_render::KustomizeEdits {
        self.edits_in(&BuildEnv::default())
    }

    /// These options as the renderer's kustomization edits, with `env` substituted where Argo CD does.
    pub fn edits_in(&self, env: &BuildEnv) -> edgecd_render::KustomizeEdits {
        let text = |s: &String| (!s.is_empty()).then(|| s.clone());
        let annotations = self.common_annotations.iter().map(|(k, v)| {
            let v = if self.common_annotations_envsubst {
                env.envsubst(v)
            } else {
                v.clone()
            };
            (k.clone(), v)
        });
        edgecd_render::KustomizeEdits {
            name_prefix: text(&self.name_prefix),
            name_suffix: text(&self.name_suffix),
            common_labels: self
                .common_labels
                .iter()
                .map(|(k, v)| (k.clone(), env.envsubst(v)))
                .collect(),
            common_annotations: annotations.collect(),
            images: self.images.iter().map(|i| env.envsubst(i)).collect(),
            namespace: text(&self.namespace),
            replicas: self
                .replicas
                .iter()
                .map(|r| (r.name.clone(), r.count))
                .collect(),
            force_common_labels: self.force_common_labels,
            force_common_annotations: self.force_common_annotations,
            label_without_selector: self.label_without_selector,
            label_include_templates: self.label_include_templates,
            patches: self.patches.iter().map(|p| p.to_string()).collect(),
            components: self.components.clone(),
            ignore_missing_components: self.ignore_missing_components,
        }
    }
}

fn split_globs(text: &str) -> Vec<String> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(trimmed);
    inner
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Kustomize options applied on top of the kustomization.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_prefix: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_suffix: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<KustomizeReplica>,
    /// Kustomize `patches` entries (`path`, `patch`, `target`, `options`), appended to the kustomization's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<serde_json::Value>,
    /// Component directories, relative to the kustomization (`kustomize edit add component`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    /// Components whose directory does not exist are skipped instead of failing the render.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_missing_components: bool,
    /// `${ARGOCD_APP_NAME}`-style variables in `commonAnnotations` are substituted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub common_annotations_envsubst: bool,
    /// `commonLabels` go to metadata only (a `labels` entry without selectors), not to selectors.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub label_without_selector: bool,
    /// With `labelWithoutSelector`, the labels also reach pod templates.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub label_include_templates: bool,
    /// A `commonLabels` key the kustomization already has is overwritten (else the render fails, as Argo CD's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_common_labels: bool,
    /// A `commonAnnotations` key the kustomization already has is overwritten (else the render fails).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_common_annotations: bool,
    /// The kustomize version Argo CD would run; kept and reported, edgecd always renders with its native kustomize v5.5.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KustomizeReplica {
    pub name: String,
    pub count: i64,
}

/// Where the app is deployed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The edgecd cluster name (Argo CD's `destination.name`).
    #[serde(default, rename = "name", skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Argo CD's `destination.server`, resolved to a cluster by the hub.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<AutomatedSync>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
}

impl SyncPolicy {
    /// Looks up a `Key=value` sync option (case-insensitive key).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.sync_options.iter().find_map(|opt| {
            let (k, v) = opt.split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
        })
    }

    /// Whether a boolean sync option is set to `true`.
    pub fn option_enabled(&self, key: &str) -> bool {
        self.option(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomatedSync {
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub self_heal: bool,
    #[serde(default)]
    pub allow_empty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Attempts; negative means unlimited.
    #[serde(default)]
    pub limit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<RetryBackoff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryBackoff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<GoDuration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreDifference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
    /// jq path expressions (`.spec.template.spec.containers[] | select(.name == "x") | .image`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jq_path_expressions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields_managers: Vec<String>,
}

/// Labels and annotations of the namespace `CreateNamespace=true` creates (Argo CD's
/// `syncPolicy.managedNamespaceMetadata`; edgecd keeps it beside `syncPolicy`, see [`ApplicationSpec`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedNamespaceMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One `spec.info` entry: a name and a value shown with the app.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InfoItem {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// The desired state of an application.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// The project; empty means `default`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    /// The one source of a single-source app; unset (empty) when `sources` is set.
    #[serde(default, skip_serializing_if = "ApplicationSource::is_unset")]
    pub source: ApplicationSource,
    /// A multi-source app's sources (Argo CD's `spec.sources`), rendered in order and their objects
    /// combined (a later source's object replaces an earlier one's of the same key); when set, `source` is
    /// unset. See [`sources`](Self::sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    #[serde(default)]
    pub destination: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<IgnoreDifference>,
    /// Argo CD's `syncPolicy.managedNamespaceMetadata`. The Argo CD import moves it here: edgecd's
    /// `SyncPolicy` is built by value in many places, so the field lives one level up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
    /// Argo CD's `spec.info`: name/value pairs shown with the app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<InfoItem>,
}

impl ApplicationSpec {
    pub const DEFAULT_HISTORY_LIMIT: u32 = 10;

    /// The app's sources: `sources` for a multi-source app, else the one `source`.
    pub fn sources(&self) -> &[ApplicationSource] {
        if self.sources.is_empty() {
            std::slice::from_ref(&self.source)
        } else {
            &self.sources
        }
    }

    /// Whether the app has `sources` rather than one `source`.
    pub fn is_multi_source(&self) -> bool {
        !self.sources.is_empty()
    }

    /// The first source that is rendered (not only a `ref` for values): what a one-line view shows as the
    /// app's repository and path.
    pub fn primary_source(&self) -> &ApplicationSource {
        self.sources()
            .iter()
            .find(|s| s.is_rendered())
            .unwrap_or(&self.sources()[0])
    }

    pub fn history_limit(&self) -> usize {
        self.revision_history_limit
            .unwrap_or(Self::DEFAULT_HISTORY_LIMIT) as usize
    }

    pub fn automated(&self) -> Option<&AutomatedSync> {
        self.sync_policy.as_ref()?.automated.as_ref()
    }

    pub fn sync_option_enabled(&self, key: &str) -> bool {
        self.sync_policy
            .as_ref()
            .is_some_and(|p| p.option_enabled(key))
    }
}

/// Why a spec, its labels or one of its fields was refused: the field path (`spec.source.path`) and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl SpecError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Longest `source.path` accepted, in bytes.
pub const MAX_SOURCE_PATH_BYTES: usize = 1024;
/// Longest `source.repoURL` accepted, in bytes.
pub const MAX_REPO_URL_BYTES: usize = 2048;
/// Longest `source.targetRevision` accepted, in bytes (a ref name or a commit).
pub const MAX_REVISION_BYTES: usize = 255;

/// A value quoted for an error message: at most 64 characters, so a huge input is not echoed back.
fn shown(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}… ({} bytes)", value.len())
    }
}

/// Checks `source.path`: relative to the repository root and inside it. Empty (or `.`) is the root.
pub fn check_source_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_SOURCE_PATH_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_SOURCE_PATH_BYTES} are accepted",
            path.len()
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(format!(
            "{} holds a control character (NUL, newline, …)",
            shown(path)
        ));
    }
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(format!(
            "{} is absolute; name a directory relative to the repository root",
            shown(path)
        ));
    }
    let mut depth: usize = 0;
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    format!(
                        "{} leaves the repository ('..' above its root)",
                        shown(path)
                    )
                })?;
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Checks a repository URL: `https://`, `http://`, `ssh://` (also `git+ssh://`, `ssh+git://`), `git://`,
/// `file://` and absolute paths (as the git cache accepts them), or scp-like `user@host:path` (as Argo CD, the
/// user is required, so `javascript:…` is not taken for a host). No credentials in the URL: they belong in
/// repository credentials.
pub fn check_repo_url(url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("required".into());
    }
    if url.len() > MAX_REPO_URL_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_REPO_URL_BYTES} are accepted",
            url.len()
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{} holds whitespace or a control character",
            shown(url)
        ));
    }
    const EXPECTED: &str =
        "expected https://, http://, ssh://, git://, file://, an absolute path or user@host:path";
    if url.starts_with('/') {
        return Ok(());
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let ssh = match scheme.as_str() {
            "https" | "http" | "git" => false,
            "ssh" | "git+ssh" | "ssh+git" => true,
            "file" => {
                return if rest.starts_with('/') {
                    Ok(())
                } else {
                    Err("file:// URLs need an absolute path".into())
                };
            }
            _ => {
                return Err(format!(
                    "{} has an unsupported scheme {scheme:?} ({EXPECTED})",
                    shown(url)
                ));
            }
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(format!("{} names no host", shown(url)));
        }
        if !host_chars_ok(host) {
            return Err(format!("{} has an invalid host", shown(url)));
        }
        return match user {
            None => Ok(()),
            Some(user) if ssh && !user.is_empty() && !user.contains(':') => Ok(()),
            Some(_) => Err(format!(
                "{} carries credentials; store them as repository credentials instead",
                shown(url)
            )),
        };
    }
    // scp-like: user@host:path, the colon before any slash.
    if let Some((authority, path)) = url.split_once(':')
        && !authority.contains('/')
        && let Some((user, host)) = authority.rsplit_once('@')
    {
        if user.is_empty() || user.contains(':') || host.is_empty() || !host_chars_ok(host) {
            return Err(format!("{} is not a valid user@host:path URL", shown(url)));
        }
        if path.is_empty() {
            return Err(format!("{} names no repository path", shown(url)));
        }
        return Ok(());
    }
    Err(format!(
        "{} is not a supported URL ({EXPECTED})",
        shown(url)
    ))
}

/// Host names, IPv4 and `[IPv6]` addresses, with an optional port.
fn host_chars_ok(host: &str) -> bool {
    host.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
}

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
fn is_dns_label(text: &str) -> bool {
    let b = text.as_bytes();
    let end_ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|&c| end_ok(c) || c == b'-')
        && b.first().is_some_and(|&c| end_ok(c))
        && b.last().is_some_and(|&c| end_ok(c))
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
fn is_dns_subdomain(text: &str) -> bool {
    !text.is_empty() && text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// A label name or value: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
fn is_label_name(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Checks a destination namespace: empty (the manifests name their own) or a DNS-1123 label.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || is_dns_label(namespace) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a valid namespace: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
            shown(namespace)
        ))
    }
}

/// Checks a label key as Kubernetes does: an optional DNS-subdomain prefix (at most 253 characters) and `/`,
/// then a name of at most 63 characters (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`).
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "key {}: the prefix must be a DNS subdomain of at most 253 characters",
            shown(key)
        ));
    }
    if !is_label_name(name) {
        return Err(format!(
            "key {}: the name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            shown(key)
        ));
    }
    Ok(())
}

/// Checks a label value as Kubernetes does: empty, or at most 63 characters (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`).
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "value {} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            shown(value)
        ))
    }
}

/// Checks every key and value of a label map; `field` names it in the error (`metadata.labels`).
pub fn validate_labels(labels: &BTreeMap<String, String>, field: &str) -> Result<(), SpecError> {
    for (key, value) in labels {
        let at = || format!("{field}[{}]", shown(key));
        check_label_key(key).map_err(|m| SpecError::new(field, m))?;
        check_label_value(value).map_err(|m| SpecError::new(at(), m))?;
    }
    Ok(())
}

impl ApplicationSource {
    /// Checks what the hub can check before any spoke sees the source: the repository URL's form, a
    /// bounded revision, and a path that stays inside the repository. Fields are named `source.*`.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.validate_with_refs(None)
    }

    /// [`validate`](Self::validate) for a source of a multi-source app whose sources define the refs `refs`
    /// (Helm value files may name `$ref/path`); `None` for a single-source app.
    pub fn validate_with_refs(&self, refs: Option<&[&str]>) -> Result<(), SpecError> {
        let oci = !self.chart.is_empty() && is_oci_url(&self.repo_url);
        if !self.chart.is_empty() {
            check_chart_repo_url(&self.repo_url)
                .map_err(|m| SpecError::new("source.repoURL", m))?;
            check_chart_name(&self.chart).map_err(|m| SpecError::new("source.chart", m))?;
            if oci && !is_oci_name_component(&self.chart) {
                return Err(SpecError::new(
                    "source.chart",
                    format!(
                        "{} is not a chart of an OCI registry (lower-case letters, digits, '.', '_' and '-' between them)",
                        shown(&self.chart)
                    ),
                ));
            }
        }
        if self.is_oci_artifact() {
            // An OCI artifact: the URL names the artifact's repository (at least one path component).
            check_oci_registry_url(&self.repo_url)
                .map_err(|m| SpecError::new("source.repoURL", m))?;
            let named = self.repo_url.get(6..).and_then(|rest| rest.split_once('/'));
            if named.is_none_or(|(_, path)| path.trim_matches('/').is_empty()) {
                return Err(SpecError::new(
                    "source.repoURL",
                    format!(
                        "{} names a registry but no artifact (expected oci://host[:port]/path/name, or a chart)",
                        shown(&self.repo_url)
                    ),
                ));
            }
        } else if !oci {
            // An OCI registry is no git repository; a chart's URL was checked above.
            check_repo_url(&self.repo_url).map_err(|m| SpecError::new("source.repoURL", m))?;
        }
        if self.target_revision.len() > MAX_REVISION_BYTES
            || self.target_revision.chars().any(char::is_control)
        {
            return Err(SpecError::new(
                "source.targetRevision",
                format!(
                    "{} is not a revision (at most {MAX_REVISION_BYTES} bytes, no control characters)",
                    shown(&self.target_revision)
                ),
            ));
        }
        check_source_path(&self.path).map_err(|m| SpecError::new("source.path", m))?;
        if let Some(helm) = &self.helm {
            helm.validate_with_refs(&self.path, refs)?;
        }
        Ok(())
    }
}

/// Most sources of a multi-source app.
pub const MAX_SOURCES: usize = 32;

/// Checks a multi-source ref name: letters, digits, `-` and `_`, at most 63 (what `$name/` can name).
pub fn check_ref_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "{} is not a source ref (at most 63 letters, digits, '-' and '_')",
            shown(name)
        ))
    }
}

/// Longest inline `helm.values` (or `valuesObject` as JSON) accepted, in bytes.
pub const MAX_HELM_VALUES_BYTES: usize = 1024 * 1024;

/// Checks a chart repository URL: `https://` or `http://` with a host and no credentials, or an OCI registry
/// (`oci://host[:port][/path]`, see [`check_oci_registry_url`]).
pub fn check_chart_repo_url(url: &str) -> Result<(), String> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("oci://") {
        return check_oci_registry_url(url);
    }
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(format!(
            "{} is not a chart repository URL (expected https:// or http://)",
            shown(url)
        ));
    }
    check_repo_url(url)
}

/// Whether a chart source's `repoURL` is an OCI registry (`oci://…`).
pub fn is_oci_url(url: &str) -> bool {
    url.get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("oci://"))
}

/// Checks the OCI registry URL of a Helm chart: `oci://host[:port][/path]` with no credentials, query or
/// fragment, and a path of lower-case repository name components (the chart's repository is `path/chart`).
pub fn check_oci_registry_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_REPO_URL_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_REPO_URL_BYTES} are accepted",
            url.len()
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{} holds whitespace or a control character",
            shown(url)
        ));
    }
    let rest = url.get(6..).unwrap_or_default();
    if rest.contains(['?', '#']) {
        return Err(format!(
            "{} has a query or fragment (expected oci://host[:port]/path)",
            shown(url)
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if let Some((_, host)) = authority.rsplit_once('@') {
        return Err(format!(
            "\"oci://…@{host}/…\" carries credentials; store them as repository credentials instead"
        ));
    }
    if authority.is_empty() {
        return Err(format!("{} names no registry host", shown(url)));
    }
    if !host_chars_ok(authority) {
        return Err(format!("{} has an invalid host", shown(url)));
    }
    if !path
        .split('/')
        .filter(|c| !c.is_empty())
        .all(is_oci_name_component)
    {
        return Err(format!(
            "{} is not an OCI repository path (lower-case letters, digits, '.', '_' and '-' between them)",
            shown(url)
        ));
    }
    Ok(())
}

/// A repository name component of an OCI registry, loosely: lower-case letters and digits with `.`, `_` and
/// `-` between them (the render checks the exact grammar).
fn is_oci_name_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.first().is_some_and(|&c| alnum(c))
        && b.last().is_some_and(|&c| alnum(c))
        && b.iter()
            .all(|&c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
}

/// Checks a chart name: one path segment of letters, digits, `-`, `_` and `.` (not `.` or `..`).
pub fn check_chart_name(chart: &str) -> Result<(), String> {
    let ok = !chart.is_empty()
        && chart.len() <= 250
        && chart != "."
        && chart != ".."
        && chart
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a chart name (letters, digits, '-', '_' and '.'; a chart of a repository, not a path)",
            shown(chart)
        ))
    }
}

/// Checks a file named relative to the chart directory `chart_dir`: it stays inside the repository.
fn check_file_in_repo(chart_dir: &str, file: &str, refs: Option<&[&str]>) -> Result<(), String> {
    if file.contains("://") {
        return Err(format!(
            "{}: remote files are not supported; name a file of the repository",
            shown(file)
        ));
    }
    if let Some(rest) = file.strip_prefix('$') {
        // `$ref/path`: a file of another source of a multi-source app, relative to its repository root.
        let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(refs) = refs else {
            return Err(format!(
                "{}: files of another source ($ref/…) belong to multi-source applications (spec.sources with a ref)",
                shown(file)
            ));
        };
        if !refs.contains(&name) {
            return Err(format!(
                "{}: no source has ref {} (refs: {})",
                shown(file),
                shown(name),
                if refs.is_empty() {
                    "none".to_owned()
                } else {
                    refs.join(", ")
                }
            ));
        }
        if path.trim().is_empty() {
            return Err(format!("{}: names no file after the ref", shown(file)));
        }
        return check_source_path(path).map_err(|_| {
            format!(
                "{} leaves the repository of ${name} or is absolute",
                shown(file)
            )
        });
    }
    if file.trim().is_empty() {
        return Err("is empty".into());
    }
    if file.starts_with('/') || file.starts_with('\\') {
        return Err(format!(
            "{} is absolute; name a file relative to the chart directory",
            shown(file)
        ));
    }
    // A chart at the repository root (or a chart of a chart repository) has no directory to join.
    let joined = if chart_dir.is_empty() || chart_dir == "." {
        file.to_owned()
    } else {
        format!("{chart_dir}/{file}")
    };
    check_source_path(&joined)
        .map_err(|_| format!("{} leaves the repository or is absolute", shown(file)))
}

/// Checks `.Capabilities.KubeVersion` as Helm parses it: `[v]MAJOR.MINOR[.PATCH]` with an optional suffix.
fn check_kube_version(version: &str) -> Result<(), String> {
    let core = version.strip_prefix('v').unwrap_or(version);
    let core = core.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
        && version.len() <= 64
        && !version.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a Kubernetes version (e.g. v1.33.0 or 1.33)",
            shown(version)
        ))
    }
}

impl HelmSource {
    /// Checks names, paths (inside the repository, relative to the chart directory `chart_dir`) and values.
    /// Fields are named `source.helm.*`.
    pub fn validate(&self, chart_dir: &str) -> Result<(), SpecError> {
        self.validate_with_refs(chart_dir, None)
    }

    /// [`validate`](Self::validate) in a multi-source app whose sources define `refs`: value files and file
    /// parameters may be `$ref/path`.
    pub fn validate_with_refs(
        &self,
        chart_dir: &str,
        refs: Option<&[&str]>,
    ) -> Result<(), SpecError> {
        let field = |f: &str| format!("source.helm.{f}");
        let name = &self.release_name;
        if !name.is_empty()
            && (name.len() > 53
                || !name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                || !name
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                || !name
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric()))
        {
            return Err(SpecError::new(
                field("releaseName"),
                format!(
                    "{} is not a Helm release name (at most 53 lower-case letters, digits, '-' and '.')",
                    shown(name)
                ),
            ));
        }
        for (i, file) in self.value_files.iter().enumerate() {
            check_file_in_repo(chart_dir, file, refs)
                .map_err(|m| SpecError::new(field(&format!("valueFiles[{i}]")), m))?;
        }
        for (i, p) in self.file_parameters.iter().enumerate() {
            if p.name.trim().is_empty() {
                return Err(SpecError::new(
                    field(&format!("fileParameters[{i}].name")),
                    "required",
                ));
            }
            check_file_in_repo(chart_dir, &p.path, refs)
                .map_err(|m| SpecError::new(field(&format!("fileParameters[{i}].path")), m))?;
        }
        for (i, p) in self.parameters.iter().enumerate() {
            if p.name.trim().is_empty() {
                return Err(SpecError::new(
                    field(&format!("parameters[{i}].name")),
                    "required",
                ));
            }
        }
        if self.values.len() > MAX_HELM_VALUES_BYTES {
            return Err(SpecError::new(
                field("values"),
                format!(
                    "is {} bytes long; at most {MAX_HELM_VALUES_BYTES} are accepted",
                    self.values.len()
                ),
            ));
        }
        if !self.values.trim().is_empty() {
            match edgecd_render::yaml::load_one(&self.values) {
                Ok(serde_json::Value::Object(_) | serde_json::Value::Null) => {}
                Ok(_) => {
                    return Err(SpecError::new(field("values"), "is not a YAML mapping"));
                }
                Err(e) => {
                    return Err(SpecError::new(field("values"), format!("is not YAML: {e}")));
                }
            }
        }
        if let Some(object) = &self.values_object {
            if !(object.is_object() || object.is_null()) {
                return Err(SpecError::new(field("valuesObject"), "expected an object"));
            }
            if object.to_string().len() > MAX_HELM_VALUES_BYTES {
                return Err(SpecError::new(
                    field("valuesObject"),
                    format!("is larger than {MAX_HELM_VALUES_BYTES} bytes as JSON"),
                ));
            }
        }
        check_namespace(&self.namespace).map_err(|m| SpecError::new(field("namespace"), m))?;
        if !self.kube_version.is_empty() {
            check_kube_version(&self.kube_version)
                .map_err(|m| SpecError::new(field("kubeVersion"), m))?;
        }
        for (i, v) in self.api_versions.iter().enumerate() {
            let parts = v.split('/').count();
            if v.is_empty()
                || v.len() > 253
                || parts > 3
                || v.split('/').any(str::is_empty)
                || v.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == ',')
            {
                return Err(SpecError::new(
                    field(&format!("apiVersions[{i}]")),
                    format!(
                        "{} is not an API version (version, group/version or group/version/Kind)",
                        shown(v)
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Destination {
    /// Checks the namespace (fields named `destination.*`); cluster names are resolved by the hub.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_namespace(&self.namespace).map_err(|m| SpecError::new("destination.namespace", m))
    }
}

impl ApplicationSpec {
    /// Checks the source and destination (fields named `spec.source.path`, `spec.destination.namespace`, …).
    /// The hub calls this on every create and update (API, `ApplyManifests`, application sets, app of
    /// apps), so a spec a spoke cannot use is refused where it is written.
    pub fn validate(&self) -> Result<(), SpecError> {
        let in_spec = |e: SpecError| SpecError::new(format!("spec.{}", e.field), e.message);
        if self.sources.is_empty() {
            self.source.validate().map_err(in_spec)?;
            if !self.source.ref_name.is_empty() {
                return Err(SpecError::new(
                    "spec.source.ref",
                    "refs name sources of multi-source applications; use spec.sources",
                ));
            }
        } else {
            self.validate_sources()?;
        }
        self.destination.validate().map_err(in_spec)
    }

    /// Checks `sources`: each source as a single one (fields named `spec.sources[i].*`), refs well formed and
    /// unique, every `$ref/…` naming one of them, at least one source rendered, `source` unset.
    fn validate_sources(&self) -> Result<(), SpecError> {
        if !self.source.is_unset() {
            return Err(SpecError::new(
                "spec.source",
                "set either spec.source or spec.sources, not both",
            ));
        }
        if self.sources.len() > MAX_SOURCES {
            return Err(SpecError::new(
                "spec.sources",
                format!(
                    "has {} sources; at most {MAX_SOURCES} are accepted",
                    self.sources.len()
                ),
            ));
        }
        let mut refs: Vec<&str> = Vec::new();
        for (i, source) in self.sources.iter().enumerate() {
            if source.ref_name.is_empty() {
                continue;
            }
            check_ref_name(&source.ref_name)
                .map_err(|m| SpecError::new(format!("spec.sources[{i}].ref"), m))?;
            if refs.contains(&source.ref_name.as_str()) {
                return Err(SpecError::new(
                    format!("spec.sources[{i}].ref"),
                    format!(
                        "{} is the ref of an earlier source",
                        shown(&source.ref_name)
                    ),
                ));
            }
            refs.push(&source.ref_name);
        }
        for (i, source) in self.sources.iter().enumerate() {
            let at = |e: SpecError| {
                let field = e.field.strip_prefix("source").unwrap_or(&e.field);
                SpecError::new(format!("spec.sources[{i}]{field}"), e.message)
            };
            source.validate_with_refs(Some(&refs)).map_err(at)?;
            if source.name.len() > 253 || source.name.chars().any(char::is_control) {
                return Err(SpecError::new(
                    format!("spec.sources[{i}].name"),
                    "is not a source name (at most 253 characters, no control characters)",
                ));
            }
            if !source.ref_name.is_empty() && (!source.chart.is_empty() || source.is_oci_artifact())
            {
                return Err(SpecError::new(
                    format!("spec.sources[{i}].ref"),
                    "a chart of a chart repository or an OCI artifact has no files for other sources to name; refs name git sources",
                ));
            }
        }
        if !self.sources.iter().any(ApplicationSource::is_rendered) {
            return Err(SpecError::new(
                "spec.sources",
                "every source is only a ref (no path or chart): nothing would be rendered",
            ));
        }
        Ok(())
    }
}

/// Identifies one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceKey {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            String::new()
        } else {
            format!("{}/", self.group)
        };
        if self.namespace.is_empty() {
            write!(f, "{group}{} {}", self.kind, self.name)
        } else {
            write!(f, "{group}{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    pub status: Health,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Default for HealthReport {
    fn default() -> Self {
        Self {
            status: Health::Unknown,
            message: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub status: SyncStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
}

impl Default for SyncReport {
    fn default() -> Self {
        Self {
            status: SyncStatus::Unknown,
            revision: String::new(),
        }
    }
}

/// Status of one resource of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    #[serde(flatten)]
    pub key: ResourceKey,
    pub status: SyncStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthReport>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_pruning: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sync_wave: i32,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_transition_time: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationPhase {
    Running,
    Succeeded,
    Failed,
    Error,
    Terminating,
}

impl OperationPhase {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Error)
    }

    /// The phase's name, as Argo CD writes it (`Succeeded`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Error => "Error",
            Self::Terminating => "Terminating",
        }
    }

    /// The phase named `name` (any case).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Error,
            Self::Terminating,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }
}

/// Outcome of one resource in one sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    #[serde(flatten)]
    pub key: ResourceKey,
    /// Synced, Pruned, PruneSkipped, SyncFailed, Unchanged.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sync_wave: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command_id: String,
    pub phase: OperationPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceResult>,
    #[serde(default)]
    pub retry_count: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initiated_by: String,
    /// The trace the operation ran in (32 hex digits); empty when the spoke does not trace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
}

/// One past sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub id: i64,
    /// The commit (or chart version) deployed; for a multi-source app, `revisions` joined with `, `.
    pub revision: String,
    /// The source deployed; unset for a multi-source app (see `sources`).
    #[serde(default, skip_serializing_if = "ApplicationSource::is_unset")]
    pub source: ApplicationSource,
    /// A multi-source app: the sources deployed, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ApplicationSource>,
    /// A multi-source app: each source's commit (or chart version), in the order of `sources`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub deployed_at: OffsetDateTime,
    pub result: OperationPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initiated_by: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceResult>,
    /// The trace the sync ran in; empty when the spoke does not trace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    /// A rollback: the id of the history entry whose source and revision it deployed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<i64>,
}

impl HistoryEntry {
    /// The sources deployed: `sources` for a multi-source app, else the one `source`.
    pub fn deployed_sources(&self) -> &[ApplicationSource] {
        if self.sources.is_empty() {
            std::slice::from_ref(&self.source)
        } else {
            &self.sources
        }
    }
}

/// One revision string for the revisions of an app's sources, in order: the revision itself for one source,
/// else the revisions joined with `, ` (what a multi-source app reports as its sync revision).
pub fn joined_revision(revisions: &[String]) -> String {
    revisions.join(", ")
}

/// What the spoke reports about an application.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(default)]
    pub sync: SyncReport,
    #[serde(default)]
    pub health: HealthReport,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_state: Option<OperationState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub reconciled_at: Option<OffsetDateTime>,
    /// Hub spec version this status was computed for (0: autonomous).
    #[serde(default)]
    pub observed_spec_version: u64,
    /// Monotonic per app at the spoke; makes replays idempotent.
    #[serde(default)]
    pub status_version: u64,
}

/// Who owns the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppOrigin {
    /// Desired state at the hub.
    Managed,
    /// Created at the edge; read-only at the hub.
    Autonomous,
}

impl AppOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Managed => "Managed",
            Self::Autonomous => "Autonomous",
        }
    }
}

/// What generated an app (an application set, or a parent app).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRef {
    pub kind: String,
    pub project: String,
    pub name: String,
    /// "hub" or the name of the spoke's cluster.
    pub scope: String,
}

#[cfg(test)]
mod tests {

    /// The source's Jsonnet options reach the renderer, with the build environment substituted.
    #[test]
    fn render_options_carry_the_jsonnet_options() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::create_dir_all(dir.path().join("vendor")).unwrap();
        std::fs::write(
            dir.path().join("vendor/cm.libsonnet"),
            "function(n) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n } }",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("app/main.jsonnet"),
            "function(suffix) (import 'cm.libsonnet')(std.extVar('app') + suffix)",
        )
        .unwrap();
        let spec: DirectorySource = serde_json::from_value(serde_json::json!({
            "jsonnet": {
                "extVars": [{"name": "app", "value": "$ARGOCD_APP_NAME"}],
                "tlas": [{"name": "suffix", "value": "'-' + 'x'", "code": true}],
                "libs": ["vendor"],
            }
        }))
        .unwrap();
        let source = ApplicationSource {
            repo_url: "https://example.com/r.git".into(),
            path: "app".into(),
            directory: Some(spec),
            ..ApplicationSource::default()
        };
        let env = BuildEnv::for_app("web", "argocd", "default", "abc", &source);
        let options = source.render_options_in(dir.path().to_path_buf(), &env);
        let objects = edgecd_render::render(&dir.path().join("app"), &options).unwrap();
        assert_eq!(objects[0]["metadata"]["name"], "web-x");
        // The spec serializes back in Argo CD's field names.
        let back = serde_json::to_value(&source.directory).unwrap();
        assert_eq!(back["jsonnet"]["extVars"][0]["name"], "app");
        assert_eq!(back["jsonnet"]["tlas"][0]["code"], true);
    }

    /// The source's kustomize options reach the renderer: names prefixed,
    /// labels added, replicas set, as Argo CD's `kustomize edit` would.
    #[test]
    fn render_options_apply_the_kustomize_options() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir(&app).unwrap();
        std::fs::write(
            app.join("kustomization.yaml"),
            "resources:\n- deploy.yaml\n",
        )
        .unwrap();
        std::fs::write(
            app.join("deploy.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n",
        )
        .unwrap();
        let source = ApplicationSource {
            path: "app".into(),
            kustomize: Some(KustomizeSource {
                name_prefix: "gen-1-".into(),
                common_labels: [("team".to_owned(), "edge".to_owned())].into(),
                replicas: vec![KustomizeReplica {
                    name: "web".into(),
                    count: 3,
                }],
                ..KustomizeSource::default()
            }),
            ..ApplicationSource::default()
        };
        let options = source.render_options(dir.path().to_path_buf());
        let objects = edgecd_render::render(&app, &options).unwrap();
        assert_eq!(objects.len(), 1);
        let deploy = serde_json::to_value(&objects[0]).unwrap();
        assert_eq!(deploy["metadata"]["name"], "gen-1-web");
        assert_eq!(deploy["metadata"]["labels"]["team"], "edge");
        assert_eq!(deploy["spec"]["replicas"], 3);
        // No options: rendered as written.
        let plain = ApplicationSource {
            path: "app".into(),
            ..ApplicationSource::default()
        };
        let objects =
            edgecd_render::render(&app, &plain.render_options(dir.path().to_path_buf())).unwrap();
        assert_eq!(
            serde_json::to_value(&objects[0]).unwrap()["metadata"]["name"],
            "web"
        );
    }
    use super::*;

    #[test]
    fn build_env_substitutes_as_go_os_expand() {
        let source = ApplicationSource {
            repo_url: "https://git.example/r".into(),
            ..ApplicationSource::default()
        };
        let env = BuildEnv::for_app("web", "shop", "team", "0123456789abcdef", &source);
        assert_eq!(
            env.envsubst("$ARGOCD_APP_NAME-${ARGOCD_APP_REVISION_SHORT} $$ $UNKNOWN! $"),
            "web-0123456 $ ! $"
        );
        // No environment: left as written.
        assert_eq!(BuildEnv::default().envsubst("a-$B"), "a-$B");
    }

    #[test]
    fn directory_globs() {
        let d = DirectorySource {
            recurse: false,
            include: "{a.yaml, b/*.yml}".into(),
            exclude: "*.json".into(),
            jsonnet: None,
        };
        assert_eq!(d.include_globs(), ["a.yaml", "b/*.yml"]);
        assert_eq!(d.exclude_globs(), ["*.json"]);
        assert!(DirectorySource::default().include_globs().is_empty());
    }

    /// The spec of an Argo CD Application from the talk's demo repo parses
    /// unchanged into the domain type.
    #[test]
    fn argo_cd_spec_json_parses() {
        let json = r#"{
            "project": "default",
            "source": {
                "repoURL": "https://github.com/example/demo.git",
                "targetRevision": "HEAD",
                "path": "deploy/overlays/cluster1"
            },
            "destination": {"server": "https://1.2.3.4:6443", "namespace": "demo"},
            "syncPolicy": {
                "automated": {"prune": true, "selfHeal": true},
                "syncOptions": ["CreateNamespace=true"],
                "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
            }
        }"#;
        let spec: ApplicationSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.source.path, "deploy/overlays/cluster1");
        assert_eq!(spec.destination.server, "https://1.2.3.4:6443");
        assert!(spec.automated().unwrap().self_heal);
        assert!(spec.sync_option_enabled("createnamespace"));
        let backoff = spec
            .sync_policy
            .as_ref()
            .unwrap()
            .retry
            .as_ref()
            .unwrap()
            .backoff
            .as_ref()
            .unwrap();
        assert_eq!(backoff.max_duration.unwrap().0.as_secs(), 180);
        let back: ApplicationSpec =
            serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    /// What the hub refuses before a spoke sees it: paths leaving the repository, absolute or with
    /// control characters, invalid namespaces and label keys, and URLs of other schemes.
    #[test]
    fn specs_are_validated_field_by_field() {
        let spec = |repo: &str, path: &str, namespace: &str| ApplicationSpec {
            source: ApplicationSource {
                repo_url: repo.into(),
                path: path.into(),
                ..ApplicationSource::default()
            },
            destination: Destination {
                cluster: "edge-1".into(),
                namespace: namespace.into(),
                ..Destination::default()
            },
            ..ApplicationSpec::default()
        };
        let field = |s: ApplicationSpec| s.validate().unwrap_err().field;
        for repo in [
            "https://git.example/r.git",
            "http://127.0.0.1:8080/r",
            "ssh://git@git.example:22/r",
            "git://127.0.0.1:9418/r.git",
            "git@github.com:org/repo.git",
            "file:///srv/git/r",
            "/srv/git/r",
        ] {
            spec(repo, "apps/web", "web").validate().unwrap();
        }
        for path in ["", ".", "apps/../base", "./apps/web/"] {
            spec("https://git.example/r", path, "").validate().unwrap();
        }
        for path in ["../../etc", "apps/../../etc", "/etc", "apps\0x", "a\nb"] {
            assert_eq!(
                field(spec("https://git.example/r", path, "web")),
                "spec.source.path",
                "{path:?}"
            );
        }
        assert!(check_source_path(&"a/".repeat(600)).is_err());
        for repo in [
            "javascript:alert(1)",
            "javascript://alert(1)",
            "data:text/html,x",
            "ftp://git.example/r",
            "https://user:secret@git.example/r",
            "",
        ] {
            let error = spec(repo, "x", "web").validate().unwrap_err();
            assert_eq!(error.field, "spec.source.repoURL", "{repo:?}");
        }
        for namespace in ["Web", "web_1", "-web", &"n".repeat(64), "a.b"] {
            assert_eq!(
                field(spec("https://git.example/r", "x", namespace)),
                "spec.destination.namespace"
            );
        }
        let labels = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        validate_labels(
            &labels("app.kubernetes.io/name", "web-1.2_x"),
            "metadata.labels",
        )
        .unwrap();
        validate_labels(&labels("team", ""), "metadata.labels").unwrap();
        for (k, v) in [
            ("k".repeat(10_000), String::new()),
            ("Bad_Prefix/name".into(), String::new()),
            (format!("{}/n", "p".repeat(254)), String::new()),
            ("-k".into(), String::new()),
            ("".into(), String::new()),
            ("team".into(), "v".repeat(64)),
            ("team".into(), "a b".into()),
        ] {
            let error = validate_labels(&labels(&k, &v), "metadata.labels").unwrap_err();
            assert!(error.field.starts_with("metadata.labels"), "{error}");
            // Huge keys are not echoed back whole.
            assert!(error.to_string().len() < 400, "{error}");
        }
    }

    /// Helm sources: chart repository URLs are http(s) (OCI named as not supported yet), chart names are no
    /// paths, values files and file parameters stay inside the repository, inline values are a mapping.
    #[test]
    fn helm_sources_are_validated_field_by_field() {
        let chart = |url: &str, chart: &str| ApplicationSource {
            repo_url: url.into(),
            chart: chart.into(),
            ..ApplicationSource::default()
        };
        assert!(
            chart("https://charts.example/stable", "nginx")
                .validate()
                .is_ok()
        );
        // OCI registries: oci://host[:port]/path with a lower-case chart; no credentials, no git source.
        assert!(
            chart("oci://registry.example/charts", "nginx")
                .validate()
                .is_ok()
        );
        assert!(chart("oci://127.0.0.1:5000", "web").validate().is_ok());
        for (url, name, field) in [
            (
                "oci://user:pw@registry.example/charts",
                "nginx",
                "source.repoURL",
            ),
            ("oci://registry.example/Charts", "nginx", "source.repoURL"),
            ("oci:///charts", "nginx", "source.repoURL"),
            (
                "oci://registry.example/charts?x=1",
                "nginx",
                "source.repoURL",
            ),
            ("oci://registry.example/charts", "NGINX", "source.chart"),
        ] {
            let err = chart(url, name).validate().unwrap_err();
            assert_eq!(err.field, field, "{url} {name}: {err:?}");
            assert!(!err.message.contains("pw@"), "{}", err.message);
        }
        // An OCI artifact: the URL names it; a registry alone, credentials or an invalid path are refused.
        let artifact = |url: &str| ApplicationSource {
            repo_url: url.into(),
            path: ".".into(),
            target_revision: "1.16.1".into(),
            ..ApplicationSource::default()
        };
        assert!(artifact("oci://registry.example/team/manifests").is_oci_artifact());
        assert!(
            artifact("oci://registry.example/team/manifests")
                .validate()
                .is_ok()
        );
        assert!(artifact("oci://127.0.0.1:5000/web").validate().is_ok());
        for url in [
            "oci://registry.example",
            "oci://registry.example/",
            "oci://u:p@registry.example/web",
            "oci://registry.example/Web",
            "oci://registry.example/web?x=1",
        ] {
            let err = artifact(url).validate().unwrap_err();
            assert_eq!(err.field, "source.repoURL", "{url}: {err:?}");
            assert!(!err.message.contains("u:p"), "{}", err.message);
        }
        let leaving = ApplicationSource {
            path: "../x".into(),
            ..artifact("oci://registry.example/web")
        };
        assert_eq!(leaving.validate().unwrap_err().field, "source.path");
        assert_eq!(
            chart("git@github.com:x/y.git", "nginx")
                .validate()
                .unwrap_err()
                .field,
            "source.repoURL"
        );
        assert_eq!(
            chart("https://charts.example", "../x")
                .validate()
                .unwrap_err()
                .field,
            "source.chart"
        );
        let helm = |h: HelmSource| ApplicationSource {
            repo_url: "https://git.example/r".into(),
            path: "charts/web".into(),
            helm: Some(h),
            ..ApplicationSource::default()
        };
        let ok = HelmSource {
            value_files: vec![
                "values-paris.yaml".into(),
                "../../common/values.yaml".into(),
            ],
            values: "replicas: 2\n".into(),
            kube_version: "v1.33.0".into(),
            api_versions: vec!["monitoring.coreos.com/v1/ServiceMonitor".into()],
            ..HelmSource::default()
        };
        assert!(helm(ok).validate().is_ok());
        let cases: Vec<(HelmSource, &str)> = vec![
            (
                HelmSource {
                    value_files: vec!["../../../outside.yaml".into()],
                    ..HelmSource::default()
                },
                "source.helm.valueFiles[0]",
            ),
            (
                HelmSource {
                    value_files: vec!["https://x.example/v.yaml".into()],
                    ..HelmSource::default()
                },
                "source.helm.valueFiles[0]",
            ),
            (
                HelmSource {
                    file_parameters: vec![HelmFileParameter {
                        name: "a".into(),
                        path: "/etc/passwd".into(),
                    }],
                    ..HelmSource::default()
                },
                "source.helm.fileParameters[0].path",
            ),
            (
                HelmSource {
                    values: "- a list\n".into(),
                    ..HelmSource::default()
                },
                "source.helm.values",
            ),
            (
                HelmSource {
                    release_name: "Not_Valid".into(),
                    ..HelmSource::default()
                },
                "source.helm.releaseName",
            ),
            (
                HelmSource {
                    kube_version: "latest".into(),
                    ..HelmSource::default()
                },
                "source.helm.kubeVersion",
            ),
            (
                HelmSource {
                    api_versions: vec!["a b".into()],
                    ..HelmSource::default()
                },
                "source.helm.apiVersions[0]",
            ),
            (
                HelmSource {
                    parameters: vec![HelmParameter::default()],
                    ..HelmSource::default()
                },
                "source.helm.parameters[0].name",
            ),
        ];
        for (h, field) in cases {
            assert_eq!(helm(h).validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn resource_key_display() {
        let key = ResourceKey {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: "web".into(),
            name: "nginx".into(),
        };
        assert_eq!(key.to_string(), "apps/Deployment web/nginx");
    }
}
