//! The `kustomization.yaml` model: parsing with unknown-field checks and the deprecated-field folding.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{RenderError, Result};
use crate::fieldspec::FieldSpec;

/// File names tried, in order, in a kustomization directory.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "images",
    "imageTags",
    "replicas",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "sortOptions",
    "buildMetadata",
    "replacements",
    "configurations",
    "vars",
    "transformers",
    "crds",
    "openapi",
    "helmCharts",
    "helmGlobals",
];

/// Fields kustomize builds with programs edgecd does not run, and why they are refused.
const REFUSED_FIELDS: &[(&str, &str)] = &[
    (
        "generators",
        "generator plugins are external programs; edgecd runs none",
    ),
    (
        "validators",
        "validator plugins are external programs; edgecd runs none",
    ),
    (
        "helmChartInflationGenerator",
        "the deprecated form is not supported; use helmCharts",
    ),
];

/// A parsed kustomization (or component).
#[derive(Debug, Default, Clone)]
pub(crate) struct Kustomization {
    /// Nothing but `apiVersion` and `kind` is set: kustomize refuses to build it.
    pub empty: bool,
    pub is_component: bool,
    pub resources: Vec<String>,
    pub components: Vec<String>,
    pub namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub common_labels: Vec<(String, String)>,
    pub labels: Vec<LabelEntry>,
    pub common_annotations: Vec<(String, String)>,
    pub images: Vec<ImageEntry>,
    pub replicas: Vec<(String, Value)>,
    pub patches: Vec<PatchEntry>,
    pub patches_strategic_merge: Vec<String>,
    pub patches_json6902: Vec<PatchEntry>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: GeneratorOptions,
    pub sort_options: Option<SortOptions>,
    /// `buildMetadata` is set (kustomize then records origins and transformations during the build).
    pub build_metadata: bool,
    /// `buildMetadata` options.
    pub origin_annotations: bool,
    pub transformer_annotations: bool,
    pub managed_by_label: bool,
    /// `crds`: files of OpenAPI definitions whose extensions add field specs.
    pub crds: Vec<String>,
    /// `openapi`: a schema file (`path`) or a built-in schema version (`version`).
    pub openapi: Option<OpenApi>,
    /// `replacements` entries: inline replacements or files holding them.
    pub replacements: Vec<ReplacementEntry>,
    /// Transformer configuration files.
    pub configurations: Vec<String>,
    pub vars: Vec<crate::vars::Var>,
    /// `transformers` entries: files holding built-in transformer configurations.
    pub transformers: Vec<String>,
    /// `helmCharts` entries (kustomize's Helm chart inflation generator).
    pub helm_charts: Vec<crate::helm::HelmChart>,
    /// `helmGlobals`.
    pub helm_globals: crate::helm::HelmGlobals,
}

/// A built-in transformer configured in a file listed under `transformers`.
#[derive(Debug, Clone)]
pub(crate) enum BuiltinTransformer {
    /// `LabelTransformer` and `AnnotationsTransformer`: pairs set at the field specs.
    Pairs {
        pairs: Vec<(String, String)>,
        specs: Vec<FieldSpec>,
    },
    Namespace(crate::transformers::NamespaceArgs),
    /// `PrefixTransformer`/`SuffixTransformer` (`PrefixSuffixTransformer` is both, prefix first).
    Affix {
        affix: String,
        suffix: bool,
        specs: Vec<FieldSpec>,
    },
    Image {
        image: ImageEntry,
        specs: Vec<FieldSpec>,
    },
    Replicas {
        name: String,
        count: Value,
        specs: Vec<FieldSpec>,
    },
    Patch(PatchEntry),
    /// `PatchStrategicMergeTransformer`: `paths` (files or inline patches) and inline `patches`.
    StrategicMerge(Vec<String>),
    /// `PatchJson6902Transformer`: one JSON6902 patch on a named target.
    Json6902(PatchEntry),
    Replacements(Vec<crate::replacements::Replacement>),
    /// `HashTransformer`: generated objects that want a hash suffix get it now (and again at the end).
    Hash,
    /// `ValueAddTransformer`: a value (default: the kustomization directory's name) written at field paths.
    ValueAdd {
        value: String,
        targets: Vec<ValueAddTarget>,
        /// `targetFilePath`: more targets, in a file relative to the kustomization.
        target_file: Option<String>,
    },
}

/// One target of a `ValueAddTransformer`.
#[derive(Debug, Clone)]
pub(crate) struct ValueAddTarget {
    pub selector: Option<Target>,
    /// `/`-separated (a `\/` stays in the segment).
    pub field_path: String,
    /// Inserts the value as this (1-based) part of the path the field holds; 0 replaces the field.
    pub file_path_position: i64,
}

impl ValueAddTarget {
    /// Parses the `targets` list of a `ValueAddTransformer` (or of its `targetFilePath`).
    pub(crate) fn parse_list(value: Option<&Value>, file: &Path) -> Result<Vec<ValueAddTarget>> {
        let p = Parser { file };
        p.list(value, "targets")?
            .into_iter()
            .map(|entry| {
                let selector = p.target(entry.get("selector"))?;
                let field_path = p
                    .opt_string(entry.get("fieldPath"), "targets.fieldPath")?
                    .unwrap_or_default();
                if field_path.is_empty() {
                    return Err(p.err("fieldPath cannot be empty".into()));
                }
                let file_path_position = match entry.get("filePathPosition") {
                    None | Some(Value::Null) => 0,
                    Some(v) => v
                        .as_i64()
                        .ok_or_else(|| p.err("targets.filePathPosition must be a number".into()))?,
                };
                if file_path_position < 0 {
                    return Err(p.err(format!(
                        "value of FilePathPosition ({file_path_position}) cannot be negative"
                    )));
                }
                Ok(ValueAddTarget {
                    selector,
                    field_path,
                    file_path_position,
                })
            })
            .collect()
    }
}

impl BuiltinTransformer {
    /// Parses one transformer configuration document (`apiVersion: builtin`, a built-in kind).
    pub(crate) fn parse(value: &Value, file: &Path) -> Result<Vec<BuiltinTransformer>> {
        let p = Parser { file };
        let map = value
            .as_object()
            .ok_or_else(|| p.err("a transformer configuration must be a mapping".into()))?;
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = map
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if api_version != "builtin" {
            return Err(p.err(format!(
                "transformer {kind} ({api_version}) refused: only the built-in transformers (apiVersion: builtin) are supported, plugins are not run"
            )));
        }
        let specs = |key: &str| -> Result<Vec<FieldSpec>> {
            p.list_values(map.get(key), key)?
                .iter()
                .map(|v| FieldSpec::parse(v).map_err(|m| p.err(format!("{kind} {key}: {m}"))))
                .collect()
        };
        let required_specs = || -> Result<Vec<FieldSpec>> {
            if map.get("fieldSpecs").is_none_or(Value::is_null) {
                return Err(p.err(format!("{kind}: fieldSpecs is not expected to be nil")));
            }
            specs("fieldSpecs")
        };
        Ok(match kind {
            "LabelTransformer" => vec![BuiltinTransformer::Pairs {
                pairs: p.string_map(map.get("labels"), "labels")?,
                specs: specs("fieldSpecs")?,
            }],
            "AnnotationsTransformer" => vec![BuiltinTransformer::Pairs {
                pairs: p.string_map(map.get("annotations"), "annotations")?,
                specs: specs("fieldSpecs")?,
            }],
            "NamespaceTransformer" => {
                use crate::transformers::SubjectMode;
                let subjects = match p
                    .opt_string(map.get("setRoleBindingSubjects"), "setRoleBindingSubjects")?
                    .as_deref()
                {
                    None | Some("" | "defaultOnly") => SubjectMode::DefaultOnly,
                    Some("allServiceAccounts") => SubjectMode::AllServiceAccounts,
                    Some("none") => SubjectMode::None,
                    Some(other) => {
                        return Err(p.err(format!(
                            "invalid value \"{other}\" for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" or \"allServiceAccounts\""
                        )));
                    }
                };
                vec![BuiltinTransformer::Namespace(
                    crate::transformers::NamespaceArgs {
                        namespace: p
                            .opt_string(
                                map.get("metadata").and_then(|m| m.get("namespace")),
                                "metadata.namespace",
                            )?
                            .unwrap_or_default(),
                        specs: specs("fieldSpecs")?,
                        unset_only: p.bool(map.get("unsetOnly"), "unsetOnly")?,
                        subjects,
                    },
                )]
            }
            "PrefixTransformer" | "SuffixTransformer" | "PrefixSuffixTransformer" => {
                let specs = required_specs()?;
                let mut out = Vec::new();
                if kind != "SuffixTransformer" {
                    out.push(BuiltinTransformer::Affix {
                        affix: p
                            .opt_string(map.get("prefix"), "prefix")?
                            .unwrap_or_default(),
                        suffix: false,
                        specs: specs.clone(),
                    });
                }
                if kind != "PrefixTransformer" {
                    out.push(BuiltinTransformer::Affix {
                        affix: p
                            .opt_string(map.get("suffix"), "suffix")?
                            .unwrap_or_default(),
                        suffix: true,
                        specs,
                    });
                }
                out
            }
            "ImageTagTransformer" => {
                let empty = Map::new();
                let entry = match map.get("imageTag") {
                    None | Some(Value::Null) => &empty,
                    Some(Value::Object(entry)) => entry,
                    Some(_) => return Err(p.err("imageTag must be a mapping".into())),
                };
                vec![BuiltinTransformer::Image {
                    image: p.image(entry, "imageTag")?,
                    specs: specs("fieldSpecs")?,
                }]
            }
            "ReplicaCountTransformer" => {
                let replica = map
                    .get("replica")
                    .and_then(Value::as_object)
                    .ok_or_else(|| p.err("ReplicaCountTransformer needs replica".into()))?;
                vec![BuiltinTransformer::Replicas {
                    name: p
                        .opt_string(replica.get("name"), "replica.name")?
                        .unwrap_or_default(),
                    count: replica.get("count").cloned().unwrap_or(Value::from(0)),
                    specs: specs("fieldSpecs")?,
                }]
            }
            "PatchTransformer" => vec![BuiltinTransformer::Patch(p.patch(map)?)],
            "PatchStrategicMergeTransformer" => {
                let mut patches = p.strings(map.get("paths"), "paths")?;
                if let Some(inline) = p.opt_string(map.get("patches"), "patches")?
                    && !inline.is_empty()
                {
                    patches.push(inline);
                }
                if patches.is_empty() {
                    return Err(p.err("empty file path and empty patch content".into()));
                }
                vec![BuiltinTransformer::StrategicMerge(patches)]
            }
            "PatchJson6902Transformer" => {
                let mut entry = Map::new();
                if let Some(target) = map.get("target") {
                    entry.insert("target".into(), target.clone());
                }
                let path = p
                    .opt_string(map.get("path"), "path")?
                    .filter(|s| !s.is_empty());
                let op = p
                    .opt_string(map.get("jsonOp"), "jsonOp")?
                    .filter(|s| !s.is_empty());
                match (path, op) {
                    (Some(path), None) => entry.insert("path".into(), Value::String(path)),
                    (None, Some(op)) => entry.insert("patch".into(), Value::String(op)),
                    (Some(_), Some(_)) => {
                        return Err(p.err("must specify a file path or jsonOp, not both".into()));
                    }
                    (None, None) => {
                        return Err(p.err("empty file path and empty jsonOp".into()));
                    }
                };
                let patch = p.patch(&entry)?;
                if patch
                    .target
                    .as_ref()
                    .is_none_or(|t| t.name.as_deref().is_none_or(str::is_empty))
                {
                    return Err(p.err("must specify the target name".into()));
                }
                vec![BuiltinTransformer::Json6902(patch)]
            }
            "ReplacementTransformer" => vec![BuiltinTransformer::Replacements(
                p.list_values(map.get("replacements"), "replacements")?
                    .iter()
                    .map(|v| {
                        crate::replacements::Replacement::parse(v)
                            .map_err(|m| p.err(format!("ReplacementTransformer: {m}")))
                    })
                    .collect::<Result<_>>()?,
            )],
            "HashTransformer" => vec![BuiltinTransformer::Hash],
            "ValueAddTransformer" => vec![BuiltinTransformer::ValueAdd {
                value: p
                    .opt_string(map.get("value"), "value")?
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                targets: ValueAddTarget::parse_list(map.get("targets"), file)?,
                target_file: p
                    .opt_string(map.get("targetFilePath"), "targetFilePath")?
                    .filter(|s| !s.is_empty()),
            }],
            other => {
                return Err(p.err(format!(
                    "transformer kind '{other}' is not a built-in transformer; plugins are not run"
                )));
            }
        })
    }
}

/// The `openapi` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenApi {
    /// A custom schema file (JSON or YAML), relative to the kustomization.
    Path(String),
    /// A built-in Kubernetes schema version (kustomize 5.5 has only `v1.21.2`).
    Version(String),
}

/// One `replacements` entry.
#[derive(Debug, Clone)]
pub(crate) enum ReplacementEntry {
    Inline(Box<crate::replacements::Replacement>),
    Path(String),
}

#[derive(Debug, Default, Clone)]
pub(crate) struct LabelEntry {
    pub pairs: Vec<(String, String)>,
    pub include_selectors: bool,
    pub include_templates: bool,
    /// Extra field specs (`fields`).
    pub fields: Vec<FieldSpec>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct ImageEntry {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
    pub tag_suffix: Option<String>,
}

/// One `patches`/`patchesJson6902` entry.
#[derive(Debug, Default, Clone)]
pub(crate) struct PatchEntry {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Target>,
    /// `options.allowNameChange`: a strategic-merge patch may rename its objects.
    pub allow_name_change: bool,
    /// `options.allowKindChange`: a strategic-merge patch may change the kind of its objects.
    pub allow_kind_change: bool,
}

/// A patch target selector.
#[derive(Debug, Default, Clone)]
pub(crate) struct Target {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct GeneratorOptions {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub disable_name_suffix_hash: bool,
    pub immutable: bool,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct GeneratorArgs {
    pub name: String,
    pub namespace: Option<String>,
    pub behavior: Behavior,
    pub envs: Vec<String>,
    pub literals: Vec<String>,
    pub files: Vec<String>,
    pub type_: Option<String>,
    pub options: GeneratorOptions,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behavior {
    #[default]
    Create,
    Merge,
    Replace,
}

#[derive(Debug, Clone)]
pub(crate) enum SortOptions {
    Fifo,
    Legacy {
        order_first: Option<Vec<String>>,
        order_last: Option<Vec<String>>,
    },
}

/// Argo CD's `spec.source.kustomize` options, applied to an app's kustomization before the build the way
/// Argo CD applies them with `kustomize edit` (`set nameprefix`, `set namesuffix`, `set image`, `set replicas`,
/// `add label [--force] [--without-selector] [--include-templates]`, `add annotation [--force]`,
/// `set namespace`, `add component`) and by appending `patches`: each replaces the kustomization's own value
/// (images and replicas entry by entry), so a prefix is not added to one the kustomization already has. As with
/// `kustomize edit add label` without `--force`, a label or annotation key the kustomization already has fails
/// the build unless forced. Values arrive already substituted (Argo CD's `envsubst` is the caller's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KustomizeEdits {
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub common_labels: Vec<(String, String)>,
    pub common_annotations: Vec<(String, String)>,
    /// `kustomize edit set image` arguments: `nginx:1.21`, `nginx=registry/nginx:1.21`, `nginx@sha256:…`.
    pub images: Vec<String>,
    pub namespace: Option<String>,
    /// `(workload name, count)`.
    pub replicas: Vec<(String, i64)>,
    /// `commonLabels` overwrite the kustomization's own keys (`add label --force`).
    pub force_common_labels: bool,
    /// `commonAnnotations` overwrite the kustomization's own keys (`add annotation --force`).
    pub force_common_annotations: bool,
    /// `commonLabels` become a `labels` entry without selectors (`add label --without-selector`).
    pub label_without_selector: bool,
    /// With `label_without_selector`, the entry also reaches templates (`--include-templates`).
    pub label_include_templates: bool,
    /// `patches` entries as JSON objects (`path`, `patch`, `target`, `options`), appended to the kustomization's.
    pub patches: Vec<String>,
    /// Component paths, relative to the kustomization directory, appended to its `components`.
    pub components: Vec<String>,
    /// Components whose directory does not exist are left out instead of failing the build.
    pub ignore_missing_components: bool,
}

impl KustomizeEdits {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self == &KustomizeEdits::default()
    }
}

/// Finds the kustomization file of a directory, if any.
pub(crate) fn find_file(dir: &Path) -> Option<std::path::PathBuf> {
    KUSTOMIZATION_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

impl Kustomization {
    /// Applies Argo CD's kustomize options (see [`KustomizeEdits`]) to the kustomization `file` of directory `dir`.
    pub(crate) fn edit(&mut self, edits: &KustomizeEdits, file: &Path, dir: &Path) -> Result<()> {
        if !edits.is_empty() {
            self.empty = false;
        }
        let p = Parser { file };
        if let Some(prefix) = &edits.name_prefix {
            self.name_prefix = Some(prefix.clone());
        }
        if let Some(suffix) = &edits.name_suffix {
            self.name_suffix = Some(suffix.clone());
        }
        for argument in &edits.images {
            let image = parse_set_image(argument);
            match self.images.iter_mut().find(|i| i.name == image.name) {
                Some(existing) => *existing = image,
                None => self.images.push(image),
            }
        }
        for (name, count) in &edits.replicas {
            let count = Value::from(*count);
            match self.replicas.iter_mut().find(|(n, _)| n == name) {
                Some(existing) => existing.1 = count,
                None => self.replicas.push((name.clone(), count)),
            }
        }
        if !edits.common_labels.is_empty() {
            let force = edits.force_common_labels;
            let pairs = if edits.label_without_selector {
                let include_templates = edits.label_include_templates;
                let index = match self.labels.iter().position(|l| {
                    !l.include_selectors
                        && l.include_templates == include_templates
                        && l.fields.is_empty()
                }) {
                    Some(index) => index,
                    None => {
                        self.labels.push(LabelEntry {
                            include_templates,
                            ..LabelEntry::default()
                        });
                        self.labels.len() - 1
                    }
                };
                &mut self.labels[index].pairs
            } else {
                &mut self.common_labels
            };
            add_pairs(
                &p,
                pairs,
                &edits.common_labels,
                force,
                "label",
                "forceCommonLabels",
            )?;
        }
        add_pairs(
            &p,
            &mut self.common_annotations,
            &edits.common_annotations,
            edits.force_common_annotations,
            "annotation",
            "forceCommonAnnotations",
        )?;
        if let Some(namespace) = &edits.namespace {
            self.namespace = Some(namespace.clone());
        }
        for text in &edits.patches {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| p.err(format!("source.kustomize.patches: {e}")))?;
            let entry = value.as_object().ok_or_else(|| {
                p.err("source.kustomize.patches: entries must be mappings".into())
            })?;
            self.patches.push(p.patch(entry)?);
        }
        for component in &edits.components {
            if edits.ignore_missing_components && !dir.join(component).exists() {
                continue;
            }
            if !self.components.contains(component) {
                self.components.push(component.clone());
            }
        }
        Ok(())
    }

    /// Parses a kustomization document.
    pub(crate) fn parse(value: &Value, file: &Path) -> Result<Kustomization> {
        let empty = Map::new();
        let map = match value {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => {
                return Err(RenderError::invalid(
                    file,
                    "kustomization must be a mapping",
                ));
            }
        };
        let p = Parser { file };
        for key in map.keys() {
            if let Some((_, why)) = REFUSED_FIELDS.iter().find(|(f, _)| f == key) {
                return Err(RenderError::invalid(
                    file,
                    format!("field '{key}' refused: {why}"),
                ));
            }
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                return Err(RenderError::invalid(
                    file,
                    format!("unknown field '{key}' in kustomization"),
                ));
            }
        }
        let mut k = Kustomization {
            empty: is_empty(map),
            ..Kustomization::default()
        };
        match map.get("kind").and_then(Value::as_str) {
            None | Some("Kustomization") => {}
            Some("Component") => k.is_component = true,
            Some(other) => {
                return Err(RenderError::invalid(
                    file,
                    format!("unknown kustomization kind '{other}'"),
                ));
            }
        }
        (k.helm_charts, k.helm_globals) = crate::helm::parse(map, file)?;
        k.resources = p.strings(map.get("resources"), "resources")?;
        k.resources.extend(p.strings(map.get("bases"), "bases")?);
        k.components = p.strings(map.get("components"), "components")?;
        k.namespace = p.opt_string(map.get("namespace"), "namespace")?;
        k.name_prefix = p.opt_string(map.get("namePrefix"), "namePrefix")?;
        k.name_suffix = p.opt_string(map.get("nameSuffix"), "nameSuffix")?;
        k.common_labels = p.string_map(map.get("commonLabels"), "commonLabels")?;
        k.common_annotations = p.string_map(map.get("commonAnnotations"), "commonAnnotations")?;
        for entry in p.list(map.get("labels"), "labels")? {
            k.labels.push(LabelEntry {
                pairs: p.string_map(entry.get("pairs"), "labels.pairs")?,
                include_selectors: entry
                    .get("includeSelectors")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                include_templates: entry
                    .get("includeTemplates")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                fields: p
                    .list_values(entry.get("fields"), "labels.fields")?
                    .iter()
                    .map(|v| FieldSpec::parse(v).map_err(|m| p.err(format!("labels.fields: {m}"))))
                    .collect::<Result<_>>()?,
            });
        }
        for field in ["images", "imageTags"] {
            for entry in p.list(map.get(field), field)? {
                k.images.push(p.image(entry, "images")?);
            }
        }
        for entry in p.list(map.get("replicas"), "replicas")? {
            let name = p
                .opt_string(entry.get("name"), "replicas.name")?
                .unwrap_or_default();
            let count = entry.get("count").cloned().unwrap_or(Value::Null);
            k.replicas.push((name, count));
        }
        for entry in p.list(map.get("patches"), "patches")? {
            k.patches.push(p.patch(entry)?);
        }
        for entry in p.list(map.get("patchesJson6902"), "patchesJson6902")? {
            k.patches_json6902.push(p.patch(entry)?);
        }
        if let Some(Value::Array(items)) = map.get("patchesStrategicMerge") {
            for item in items {
                match item {
                    Value::String(s) => k.patches_strategic_merge.push(s.clone()),
                    _ => {
                        return Err(RenderError::invalid(
                            file,
                            "patchesStrategicMerge entries must be strings",
                        ));
                    }
                }
            }
        }
        for (field, kind) in [
            ("configMapGenerator", "configmap"),
            ("secretGenerator", "secret"),
        ] {
            for entry in p.list(map.get(field), field)? {
                let args = p.generator(entry, kind)?;
                if field == "configMapGenerator" {
                    k.config_map_generator.push(args);
                } else {
                    k.secret_generator.push(args);
                }
            }
        }
        if let Some(options) = map.get("generatorOptions") {
            k.generator_options = p.options(options)?;
        }
        if let Some(Value::Object(sort)) = map.get("sortOptions") {
            k.sort_options = match sort.get("order").and_then(Value::as_str) {
                Some("fifo") => Some(SortOptions::Fifo),
                Some("legacy") | None => {
                    let legacy = sort.get("legacySortOptions");
                    let first = legacy.and_then(|l| l.get("orderFirst"));
                    let last = legacy.and_then(|l| l.get("orderLast"));
                    Some(SortOptions::Legacy {
                        order_first: first
                            .map(|v| p.strings(Some(v), "orderFirst"))
                            .transpose()?,
                        order_last: last.map(|v| p.strings(Some(v), "orderLast")).transpose()?,
                    })
                }
                Some(other) => {
                    return Err(RenderError::invalid(
                        file,
                        format!("unknown sortOptions order '{other}'"),
                    ));
                }
            };
        }
        for entry in p.list(map.get("replacements"), "replacements")? {
            if let Some(path) = p.opt_string(entry.get("path"), "replacements.path")? {
                if entry.len() > 1 {
                    return Err(p.err(
                        "a replacements entry with 'path' may not hold anything else".into(),
                    ));
                }
                k.replacements.push(ReplacementEntry::Path(path));
            } else {
                let replacement =
                    crate::replacements::Replacement::parse(&Value::Object(entry.clone()))
                        .map_err(|m| p.err(format!("replacements: {m}")))?;
                k.replacements
                    .push(ReplacementEntry::Inline(Box::new(replacement)));
            }
        }
        if k.replacements.len() > crate::replacements::MAX_REPLACEMENTS {
            return Err(p.err("too many replacements".into()));
        }
        k.configurations = p.strings(map.get("configurations"), "configurations")?;
        k.transformers = p.strings(map.get("transformers"), "transformers")?;
        for entry in p.list(map.get("vars"), "vars")? {
            let var = crate::vars::Var::parse(&Value::Object(entry.clone()))
                .map_err(|m| p.err(format!("vars: {m}")))?;
            crate::vars::merge(&mut k.vars, std::slice::from_ref(&var))
                .map_err(|m| p.err(format!("vars: {m}")))?;
        }
        let build_metadata = p.strings(map.get("buildMetadata"), "buildMetadata")?;
        // kustomize tracks origins for any non-empty list and ignores options it does not know.
        k.build_metadata = !build_metadata.is_empty();
        for item in build_metadata {
            match item.as_str() {
                "originAnnotations" => k.origin_annotations = true,
                "transformerAnnotations" => k.transformer_annotations = true,
                "managedByLabel" => k.managed_by_label = true,
                _ => {}
            }
        }
        k.crds = p.strings(map.get("crds"), "crds")?;
        k.openapi = match map.get("openapi") {
            None | Some(Value::Null) => None,
            Some(Value::Object(openapi)) => {
                for key in openapi.keys() {
                    if key != "path" && key != "version" {
                        return Err(p.err(format!("openapi: unknown key '{key}'")));
                    }
                }
                let path = p.opt_string(openapi.get("path"), "openapi.path")?;
                let version = p.opt_string(openapi.get("version"), "openapi.version")?;
                match (path, version) {
                    (Some(_), Some(_)) => {
                        return Err(p.err(
                            "builtin version and custom schema provided, cannot use both".into(),
                        ));
                    }
                    (Some(path), None) => Some(OpenApi::Path(path)),
                    (None, Some(version)) => Some(OpenApi::Version(version)),
                    (None, None) => None,
                }
            }
            Some(_) => return Err(p.err("openapi must be a mapping".into())),
        };
        Ok(k)
    }
}

/// kustomize's `CheckEmpty`: nothing but `apiVersion` and `kind` set, where null, `""` and `false` count as
/// unset but an empty list or map does not (except the deprecated lists folded into others: `bases`,
/// `imageTags`, `helmChartInflationGenerator`).
fn is_empty(map: &Map<String, Value>) -> bool {
    map.iter().all(|(key, value)| match value {
        _ if key == "apiVersion" || key == "kind" => true,
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => {
            items.is_empty()
                && matches!(
                    key.as_str(),
                    "bases" | "imageTags" | "helmChartInflationGenerator"
                )
        }
        _ => false,
    })
}

/// `kustomize edit add label|annotation`: a key already present fails unless `force`, which overwrites it.
fn add_pairs(
    p: &Parser<'_>,
    pairs: &mut Vec<(String, String)>,
    added: &[(String, String)],
    force: bool,
    what: &str,
    flag: &str,
) -> Result<()> {
    for (key, value) in added {
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(existing) if force => existing.1 = value.clone(),
            Some(_) => {
                return Err(p.err(format!(
                    "{what} {key} is already in the kustomization; set source.kustomize.{flag}: true to \
                     overwrite it (as Argo CD's kustomize edit add {what} --force)"
                )));
            }
            None => pairs.push((key.clone(), value.clone())),
        }
    }
    Ok(())
}

/// One `kustomize edit set image` argument as an `images:` entry: `NAME=NEWNAME[:TAG|@DIGEST]`,
/// or `NAME[:TAG|@DIGEST]` (a new tag or digest only).
fn parse_set_image(argument: &str) -> ImageEntry {
    /// (name, tag, digest) of an image reference; a `:` before the last `/` is a registry port.
    fn split(reference: &str) -> (String, Option<String>, Option<String>) {
        if let Some((name, digest)) = reference.split_once('@') {
            return (name.to_owned(), None, Some(digest.to_owned()));
        }
        let last_part = reference.rfind('/').map_or(0, |i| i + 1);
        match reference[last_part..].rfind(':') {
            Some(i) => (
                reference[..last_part + i].to_owned(),
                Some(reference[last_part + i + 1..].to_owned()),
                None,
            ),
            None => (reference.to_owned(), None, None),
        }
    }
    match argument.split_once('=') {
        Some((name, new)) => {
            let (new_name, new_tag, digest) = split(new);
            ImageEntry {
                name: name.to_owned(),
                new_name: (!new_name.is_empty()).then_some(new_name),
                new_tag,
                digest,
                tag_suffix: None,
            }
        }
        None => {
            let (name, new_tag, digest) = split(argument);
            ImageEntry {
                name,
                new_name: None,
                new_tag,
                digest,
                tag_suffix: None,
            }
        }
    }
}

// === impl Parser ===

struct Parser<'a> {
    file: &'a Path,
}

impl Parser<'_> {
    fn err(&self, message: String) -> RenderError {
        RenderError::invalid(self.file, message)
    }

    fn strings(&self, value: Option<&Value>, field: &str) -> Result<Vec<String>> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    scalar_string(item)
                        .ok_or_else(|| self.err(format!("{field}: entries must be strings")))
                })
                .collect(),
            Some(_) => Err(self.err(format!("{field} must be a list"))),
        }
    }

    fn image(&self, entry: &Map<String, Value>, field: &str) -> Result<ImageEntry> {
        let text = |key: &str| -> Result<Option<String>> {
            Ok(self
                .opt_string(entry.get(key), &format!("{field}.{key}"))?
                .filter(|s| !s.is_empty()))
        };
        Ok(ImageEntry {
            name: text("name")?.unwrap_or_default(),
            new_name: text("newName")?,
            new_tag: text("newTag")?,
            digest: text("digest")?,
            tag_suffix: text("tagSuffix")?,
        })
    }

    fn bool(&self, value: Option<&Value>, field: &str) -> Result<bool> {
        match value {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.err(format!("{field} must be a boolean"))),
        }
    }

    fn list_values<'v>(&self, value: Option<&'v Value>, field: &str) -> Result<&'v [Value]> {
        match value {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.err(format!("{field} must be a list"))),
        }
    }

    fn opt_string(&self, value: Option<&Value>, field: &str) -> Result<Option<String>> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(v) => scalar_string(v)
                .map(Some)
                .ok_or_else(|| self.err(format!("{field} must be a string"))),
        }
    }

    fn string_map(&self, value: Option<&Value>, field: &str) -> Result<Vec<(String, String)>> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    let v = if v.is_null() {
                        Some(String::new())
                    } else {
                        scalar_string(v)
                    };
                    v.map(|v| (k.clone(), v))
                        .ok_or_else(|| self.err(format!("{field}.{k} must be a string")))
                })
                .collect(),
            Some(_) => Err(self.err(format!("{field} must be a mapping"))),
        }
    }

    fn list<'v>(
        &self,
        value: Option<&'v Value>,
        field: &str,
    ) -> Result<Vec<&'v Map<String, Value>>> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_object()
                        .ok_or_else(|| self.err(format!("{field}: entries must be mappings")))
                })
                .collect(),
            Some(_) => Err(self.err(format!("{field} must be a list"))),
        }
    }

    fn patch(&self, entry: &Map<String, Value>) -> Result<PatchEntry> {
        let target = self.target(entry.get("target"))?;
        let option = |name: &str| {
            entry
                .get("options")
                .and_then(|o| o.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let patch = PatchEntry {
            path: self.opt_string(entry.get("path"), "patch.path")?,
            patch: self.opt_string(entry.get("patch"), "patch.patch")?,
            target,
            allow_name_change: option("allowNameChange"),
            allow_kind_change: option("allowKindChange"),
        };
        if patch.path.is_some() == patch.patch.is_some() {
            return Err(self.err("a patch needs exactly one of 'path' and 'patch'".into()));
        }
        Ok(patch)
    }

    /// A selector (`group`, `version`, `kind`, `name`, `namespace`, label and annotation selectors).
    fn target(&self, value: Option<&Value>) -> Result<Option<Target>> {
        Ok(match value {
            None | Some(Value::Null) => None,
            Some(Value::Object(t)) => Some(Target {
                group: self.opt_string(t.get("group"), "target.group")?,
                version: self.opt_string(t.get("version"), "target.version")?,
                kind: self.opt_string(t.get("kind"), "target.kind")?,
                name: self.opt_string(t.get("name"), "target.name")?,
                namespace: self.opt_string(t.get("namespace"), "target.namespace")?,
                label_selector: self.opt_string(t.get("labelSelector"), "target.labelSelector")?,
                annotation_selector: self
                    .opt_string(t.get("annotationSelector"), "target.annotationSelector")?,
            }),
            Some(_) => return Err(self.err("patch target must be a mapping".into())),
        })
    }

    fn options(&self, value: &Value) -> Result<GeneratorOptions> {
        Ok(GeneratorOptions {
            labels: self.string_map(value.get("labels"), "generatorOptions.labels")?,
            annotations: self
                .string_map(value.get("annotations"), "generatorOptions.annotations")?,
            disable_name_suffix_hash: value
                .get("disableNameSuffixHash")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            immutable: value
                .get("immutable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    fn generator(&self, entry: &Map<String, Value>, kind: &str) -> Result<GeneratorArgs> {
        let name = self
            .opt_string(entry.get("name"), "generator name")?
            .unwrap_or_default();
        let behavior = match entry.get("behavior").and_then(Value::as_str) {
            Some("create") => Behavior::Create,
            Some("merge") => Behavior::Merge,
            Some("replace") => Behavior::Replace,
            // kustomize treats any other value as unspecified, which creates like `create`.
            Some(_) => Behavior::Create,
            None => {
                if entry.get("behavior").is_some_and(|b| !b.is_null()) {
                    return Err(self.err(format!("{kind} {name}: behavior must be a string")));
                }
                Behavior::Create
            }
        };
        let mut envs = self.strings(entry.get("envs"), "envs")?;
        if let Some(env) = self.opt_string(entry.get("env"), "env")? {
            envs.push(env);
        }
        Ok(GeneratorArgs {
            name,
            namespace: self.opt_string(entry.get("namespace"), "namespace")?,
            behavior,
            envs,
            literals: self.strings(entry.get("literals"), "literals")?,
            files: self.strings(entry.get("files"), "files")?,
            type_: self.opt_string(entry.get("type"), "type")?,
            options: entry
                .get("options")
                .map(|o| self.options(o))
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// The text of a scalar as kustomize reads it into a Go string.
fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(crate::yaml::format_number_plain(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn image(
        name: &str,
        new_name: Option<&str>,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> String {
        format!("{name} {new_name:?} {tag:?} {digest:?}")
    }

    fn parsed(argument: &str) -> String {
        let i = parse_set_image(argument);
        image(
            &i.name,
            i.new_name.as_deref(),
            i.new_tag.as_deref(),
            i.digest.as_deref(),
        )
    }

    #[test]
    fn set_image_arguments() {
        assert_eq!(
            parsed("nginx:1.21"),
            image("nginx", None, Some("1.21"), None)
        );
        assert_eq!(
            parsed("nginx=registry:5000/edge/nginx:1.21"),
            image(
                "nginx",
                Some("registry:5000/edge/nginx"),
                Some("1.21"),
                None
            )
        );
        assert_eq!(
            parsed("registry:5000/nginx"),
            image("registry:5000/nginx", None, None, None)
        );
        assert_eq!(
            parsed("nginx@sha256:abc"),
            image("nginx", None, None, Some("sha256:abc"))
        );
        assert_eq!(
            parsed("nginx=mirror/nginx"),
            image("nginx", Some("mirror/nginx"), None, None)
        );
    }

    #[test]
    fn edits_replace_the_kustomizations_own_values() {
        let text = "namePrefix: old-\ncommonLabels: {a: '1', b: '2'}\nimages:\n- name: nginx\n  newTag: '1.19'\nreplicas:\n- name: web\n  count: 1\n";
        let value = crate::yaml::load_one(text).unwrap();
        let mut k = Kustomization::parse(&value, Path::new("kustomization.yaml")).unwrap();
        let file = Path::new("kustomization.yaml");
        let labels = vec![
            ("b".to_owned(), "3".to_owned()),
            ("c".to_owned(), "4".to_owned()),
        ];
        // As `kustomize edit add label` without --force: a key the kustomization has fails, naming it.
        let err = k
            .clone()
            .edit(
                &KustomizeEdits {
                    common_labels: labels.clone(),
                    ..KustomizeEdits::default()
                },
                file,
                Path::new("."),
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("label b is already in the kustomization")
                && err.to_string().contains("forceCommonLabels"),
            "{err}"
        );
        k.edit(
            &KustomizeEdits {
                name_prefix: Some("gen-1-".into()),
                common_labels: labels,
                force_common_labels: true,
                images: vec!["nginx:1.21".into(), "redis=mirror/redis:7".into()],
                namespace: Some("generated".into()),
                replicas: vec![("web".into(), 3), ("api".into(), 2)],
                ..KustomizeEdits::default()
            },
            file,
            Path::new("."),
        )
        .unwrap();
        assert_eq!(k.name_prefix.as_deref(), Some("gen-1-"));
        assert_eq!(k.name_suffix, None);
        assert_eq!(k.namespace.as_deref(), Some("generated"));
        assert_eq!(
            k.common_labels,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "3".to_owned()),
                ("c".to_owned(), "4".to_owned())
            ]
        );
        assert_eq!(k.images.len(), 2);
        assert_eq!(k.images[0].new_tag.as_deref(), Some("1.21"));
        assert_eq!(k.images[1].new_name.as_deref(), Some("mirror/redis"));
        assert_eq!(
            k.replicas,
            vec![
                ("web".to_owned(), Value::from(3)),
                ("api".to_owned(), Value::from(2))
            ]
        );
        assert!(KustomizeEdits::default().is_empty());
    }
}
