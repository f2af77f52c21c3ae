//! The kustomize build pipeline: accumulate resources, generators and components, then run the built-in
//! transformers in kustomize's order; at the root add hash suffixes, fix name references and sort.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{RenderError, Result};
use crate::fieldspec::TransformerConfig;
use crate::generators::{self, GeneratedKind};
use crate::kustomization::{
    self, Behavior, BuiltinTransformer, GeneratorArgs, Kustomization, KustomizeEdits, OpenApi,
    PatchEntry, ReplacementEntry, SortOptions,
};
use crate::loader::{RepoRoot, relative_to};
use crate::openapi::{self, CustomSchema, SchemaGuard};
use crate::patch::{self, Merged, Selector};
use crate::replacements::{self, Replacement};
use crate::resource::{Origin, ResId, Resource, get_at, set_at, str_at};
use crate::transformers::NamespaceArgs;
use crate::{nameref, sort, transformers, vars, yaml};

/// The `app.kubernetes.io/managed-by` value of `buildMetadata: [managedByLabel]`: kustomize writes
/// `kustomize-` and its version, and the kustomize built into kubectl (the reference here) has none.
pub(crate) const MANAGED_BY: &str = "kustomize-(devel)";

/// The only built-in OpenAPI version kustomize 5.5 accepts in `openapi: {version}`.
const BUILTIN_OPENAPI_VERSION: &str = "v1.21.2";

/// Builds the kustomization in `dir` and returns the final objects in output order.
pub(crate) fn build(
    dir: &Path,
    repo: &RepoRoot,
    edits: Option<&KustomizeEdits>,
    helm: Option<&dyn crate::HelmChartInflator>,
) -> Result<Vec<Value>> {
    let mut builder = Builder {
        repo,
        helm,
        stack: Vec::new(),
        edits,
        root: dir.to_path_buf(),
        track_origin: false,
        schema_set: false,
        schema_guard: None,
    };
    let (kustomization, mut resources, config) = builder.build_dir(dir, false)?;
    let file = kustomization_file(dir);
    // Root-only steps.
    for resource in resources.iter_mut().filter(|r| r.needs_hash) {
        resource.store_previous_id();
        let hash = generators::content_hash(&resource.object);
        let name = format!("{}-{hash}", resource.name());
        resource.set_name(name);
    }
    nameref::fix(&mut resources, &config)
        .map_err(|message| RenderError::transform(&file, message))?;
    vars::resolve(&mut resources, &config.vars, &config.var_reference)
        .map_err(|message| RenderError::transform(&file, message))?;
    resources.retain(|r| {
        str_at(
            &r.object,
            &[
                "metadata",
                "annotations",
                "config.kubernetes.io/local-config",
            ],
        )
        .is_none_or(|v| v != "true")
    });
    // kustomize clears its internal annotations at the end (the origin and transformation records unless
    // `buildMetadata` asks for them) and drops `metadata.annotations` left empty or null.
    for resource in &mut resources {
        let Some(Value::Object(metadata)) = resource.object.get_mut("metadata") else {
            continue;
        };
        if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
            if !kustomization.origin_annotations {
                annotations.shift_remove(ORIGIN_ANNOTATION);
            }
            if !kustomization.transformer_annotations {
                annotations.shift_remove(TRANSFORMATIONS_ANNOTATION);
            }
        }
        if metadata
            .get("annotations")
            .is_some_and(|a| a.is_null() || a.as_object().is_some_and(Map::is_empty))
        {
            metadata.remove("annotations");
        }
    }
    match &kustomization.sort_options {
        Some(SortOptions::Fifo) => {}
        Some(SortOptions::Legacy {
            order_first,
            order_last,
        }) => {
            sort::legacy(
                &mut resources,
                order_first.as_deref(),
                order_last.as_deref(),
            );
        }
        None => sort::legacy(&mut resources, None, None),
    }
    if kustomization.managed_by_label {
        for resource in &mut resources {
            set_at(
                &mut resource.object,
                &["metadata", "labels", "app.kubernetes.io/managed-by"],
                Value::String(MANAGED_BY.into()),
            );
        }
    }
    drop(builder);
    Ok(resources.into_iter().map(|r| r.object).collect())
}

/// Where kustomize records an object's origin (with `buildMetadata`).
const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";
/// Where kustomize records the transformers that ran over an object (with `buildMetadata`).
const TRANSFORMATIONS_ANNOTATION: &str = "alpha.config.kubernetes.io/transformations";

/// A YAML scalar as kustomize's origin records write it.
fn scalar(s: &str) -> String {
    yaml::to_yaml_document(&Value::String(s.to_string()))
        .trim_end_matches('\n')
        .to_string()
}

/// kustomize's `Origin` of a transformer or generator, as YAML with `indent` before every line and the
/// first line starting with `first` (`- ` in a list).
fn origin_text(
    configured_in: &str,
    kind: &str,
    name: Option<&str>,
    namespace: Option<&str>,
    first: &str,
    indent: &str,
) -> String {
    let mut text = format!(
        "{first}configuredIn: {}\n{indent}configuredBy:\n{indent}  apiVersion: builtin\n{indent}  kind: {}\n",
        scalar(configured_in),
        scalar(kind)
    );
    for (key, value) in [("name", name), ("namespace", namespace)] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            text.push_str(&format!("{indent}  {key}: {}\n", scalar(value)));
        }
    }
    text
}

/// The annotations of an object, created when missing.
fn annotations_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let metadata = object
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let metadata = metadata.as_object_mut()?;
    let annotations = metadata.entry("annotations").or_insert(Value::Null);
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    annotations.as_object_mut()
}

fn kustomization_file(dir: &Path) -> PathBuf {
    kustomization::find_file(dir).unwrap_or_else(|| dir.join("kustomization.yaml"))
}

struct Builder<'a> {
    repo: &'a RepoRoot,
    /// Renders `helmCharts` entries; without one they fail naming the entry.
    helm: Option<&'a dyn crate::HelmChartInflator>,
    stack: Vec<PathBuf>,
    /// Applied to the root kustomization only.
    edits: Option<&'a KustomizeEdits>,
    /// The directory being built (origins are relative to it).
    root: PathBuf,
    /// The root has `buildMetadata`: like kustomize, record each object's origin (file or generator) and the
    /// transformers that ran over it in its annotations during the build.
    track_origin: bool,
    /// An `openapi` field took effect (kustomize sets the schema once: the root's, else the first base's).
    schema_set: bool,
    /// Keeps a custom schema installed for this build.
    schema_guard: Option<SchemaGuard>,
}

impl Builder<'_> {
    /// Loads and fully builds one kustomization directory (without the root-only steps).
    fn build_dir(
        &mut self,
        dir: &Path,
        as_component: bool,
    ) -> Result<(Kustomization, Vec<Resource>, TransformerConfig)> {
        let mut kustomization = self.load_kustomization(dir)?;
        let file = kustomization_file(dir);
        if self.stack.is_empty()
            && !as_component
            && let Some(edits) = self.edits.take()
        {
            kustomization.edit(edits, &file, dir)?;
        }
        if kustomization.empty {
            return Err(RenderError::invalid(&file, "kustomization.yaml is empty"));
        }
        let is_root = self.stack.is_empty() && !as_component;
        if is_root {
            self.track_origin = kustomization.build_metadata;
        }
        self.set_schema(dir, &file, &kustomization, is_root)?;
        if as_component && !kustomization.is_component {
            return Err(RenderError::invalid(
                &file,
                "listed under components but its kind is not Component",
            ));
        }
        // A Component is refused as a resource of another kustomization, but kustomize builds one on its own.
        if !as_component && kustomization.is_component && !self.stack.is_empty() {
            return Err(RenderError::invalid(
                &file,
                "expected kind Kustomization for a resource but found Component; list it under components",
            ));
        }
        if self.stack.iter().any(|d| d == dir) {
            let chain: Vec<String> = self.stack.iter().map(|d| d.display().to_string()).collect();
            return Err(RenderError::Cycle {
                path: dir.to_path_buf(),
                chain: chain.join(" -> "),
            });
        }
        self.stack.push(dir.to_path_buf());
        let mut resources = Vec::new();
        let mut config = TransformerConfig::default();
        let result = self.accumulate(dir, &file, &kustomization, &mut resources, &mut config);
        self.stack.pop();
        result?;
        Ok((kustomization, resources, config))
    }

    /// kustomize's `openapi.SetSchema`: the root's `openapi` field (or none) decides; otherwise the first
    /// kustomization loaded with one sets the schema for the rest of the build. A custom schema's file is read
    /// even when another schema is already in effect.
    fn set_schema(
        &mut self,
        dir: &Path,
        file: &Path,
        k: &Kustomization,
        reset: bool,
    ) -> Result<()> {
        let text = match &k.openapi {
            Some(OpenApi::Path(path)) => {
                if is_remote(path) {
                    return Err(RenderError::Remote {
                        file: file.to_path_buf(),
                        url: path.clone(),
                    });
                }
                let path = self.repo.resolve(dir, path, dir)?;
                Some((self.repo.read_text(&path)?, path))
            }
            _ => None,
        };
        if self.schema_set && !reset {
            return Ok(());
        }
        match (&k.openapi, text) {
            (Some(OpenApi::Path(_)), Some((text, path))) => {
                let document =
                    yaml::load_one_within(&text, self.repo.yaml_budget()).map_err(|source| {
                        RenderError::Yaml {
                            path: path.clone(),
                            source,
                        }
                    })?;
                let schema = CustomSchema::parse(&document).map_err(|m| {
                    RenderError::invalid(&path, format!("invalid schema file: {m}"))
                })?;
                if self.schema_guard.is_none() {
                    self.schema_guard = Some(openapi::install(Some(Arc::new(schema))));
                }
                self.schema_set = true;
            }
            (Some(OpenApi::Version(version)), _) if !version.is_empty() => {
                if version != BUILTIN_OPENAPI_VERSION {
                    return Err(RenderError::invalid(
                        file,
                        format!("the specified OpenAPI version is not built in ({version})"),
                    ));
                }
                self.schema_set = true;
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a transformer run on every object (kustomize's `AddTransformerAnnotation`): an object without
    /// an origin gets the transformer as its origin, the others get it appended to their transformations.
    fn record(
        &self,
        resources: &mut [Resource],
        configured_in: &Path,
        kind: &str,
        name: Option<&str>,
        namespace: Option<&str>,
    ) {
        if !self.track_origin {
            return;
        }
        let configured_in = relative_to(configured_in, &self.root);
        let as_origin = origin_text(&configured_in, kind, name, namespace, "", "");
        let as_entry = origin_text(&configured_in, kind, name, namespace, "- ", "  ");
        for resource in resources {
            let Some(annotations) = annotations_mut(&mut resource.object) else {
                continue;
            };
            if !annotations.contains_key(ORIGIN_ANNOTATION) {
                annotations.insert(ORIGIN_ANNOTATION.into(), Value::String(as_origin.clone()));
                continue;
            }
            match annotations.get_mut(TRANSFORMATIONS_ANNOTATION) {
                Some(Value::String(list)) => list.push_str(&as_entry),
                _ => {
                    annotations.insert(
                        TRANSFORMATIONS_ANNOTATION.into(),
                        Value::String(as_entry.clone()),
                    );
                }
            }
        }
    }

    /// Sets the origin record of a new object (with `buildMetadata`), unless it has one.
    fn set_origin(&self, resource: &mut Resource) {
        if !self.track_origin {
            return;
        }
        let text = match &resource.origin {
            Some(Origin::File(path)) => {
                format!("path: {}\n", scalar(&relative_to(path, &self.root)))
            }
            Some(Origin::Generator {
                kustomization,
                kind,
            }) => origin_text(
                &relative_to(kustomization, &self.root),
                kind,
                None,
                None,
                "",
                "",
            ),
            None => return,
        };
        if let Some(annotations) = annotations_mut(&mut resource.object) {
            annotations
                .entry(ORIGIN_ANNOTATION)
                .or_insert(Value::String(text));
        }
    }

    fn load_kustomization(&self, dir: &Path) -> Result<Kustomization> {
        let Some(file) = kustomization::find_file(dir) else {
            return Err(RenderError::Io {
                path: dir.join("kustomization.yaml"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        };
        let text = self.repo.read_text(&file)?;
        let value = yaml::load_one_within(&text, self.repo.yaml_budget()).map_err(|source| {
            RenderError::Yaml {
                path: file.clone(),
                source,
            }
        })?;
        Kustomization::parse(&value, &file)
    }

    /// Steps 2.1–2.7 of kustomize's `accumulateTarget`, on `resources`.
    fn accumulate(
        &mut self,
        dir: &Path,
        file: &Path,
        k: &Kustomization,
        resources: &mut Vec<Resource>,
        config: &mut TransformerConfig,
    ) -> Result<()> {
        // Ids do not change until the transformers run: one set serves resources and generators.
        let mut seen = id_set(resources);
        for entry in &k.resources {
            if is_remote(entry) {
                return Err(RenderError::Remote {
                    file: file.to_path_buf(),
                    url: entry.clone(),
                });
            }
            let path = crate::loader::normalize(&dir.join(entry));
            if path.is_dir() {
                self.repo.check(&path)?;
                let (_, base, base_config) = self.build_dir(&path, false)?;
                config
                    .merge(&base_config)
                    .map_err(|m| RenderError::invalid(file, m))?;
                add_resources(resources, &mut seen, base, file)?;
            } else {
                let path = self.repo.resolve(dir, entry, dir)?;
                let loaded = self
                    .load_objects(&path)?
                    .into_iter()
                    .map(|(object, empty_values)| {
                        let mut resource = Resource::new(object, Some(Origin::File(path.clone())));
                        resource.empty_values = empty_values;
                        self.set_origin(&mut resource);
                        resource
                    });
                add_resources(resources, &mut seen, loaded, file)?;
            }
        }
        // kustomize's defaults, extended by the configuration files, join the configuration from below.
        let mut configured = TransformerConfig::defaults().clone();
        for entry in &k.configurations {
            let (value, path) = self.load_single(dir, entry)?;
            let loaded =
                TransformerConfig::parse(&value).map_err(|m| RenderError::invalid(&path, m))?;
            configured
                .merge(&loaded)
                .map_err(|m| RenderError::invalid(&path, m))?;
        }
        config
            .merge(&configured)
            .map_err(|m| RenderError::invalid(file, m))?;
        for entry in &k.crds {
            let (value, path) = self.load_single(dir, entry)?;
            let loaded = openapi::config_from_crds(&value).map_err(|m| {
                RenderError::invalid(&path, format!("unable to parse open API definition: {m}"))
            })?;
            config
                .merge(&loaded)
                .map_err(|m| RenderError::invalid(&path, m))?;
        }
        for args in &k.config_map_generator {
            self.run_generator(
                (dir, file),
                k,
                args,
                GeneratedKind::ConfigMap,
                resources,
                &mut seen,
            )?;
        }
        for args in &k.secret_generator {
            self.run_generator(
                (dir, file),
                k,
                args,
                GeneratedKind::Secret,
                resources,
                &mut seen,
            )?;
        }
        // kustomize's third built-in generator, after the ConfigMap and Secret generators.
        for (index, chart) in k.helm_charts.iter().enumerate() {
            let objects = crate::helm::inflate(
                self.repo,
                (dir, file),
                (index, chart),
                &k.helm_globals,
                self.helm,
            )?;
            let inflated = objects.into_iter().map(|object| {
                let mut resource = Resource::new(
                    object,
                    Some(Origin::Generator {
                        kustomization: file.to_path_buf(),
                        kind: "HelmChartInflationGenerator",
                    }),
                );
                self.set_origin(&mut resource);
                resource
            });
            add_resources(resources, &mut seen, inflated, file).map_err(|e| match e {
                RenderError::DuplicateId { path, id } => RenderError::transform(
                    path,
                    format!(
                        "{}: may not add resource with an already registered id: {id}",
                        crate::helm::entry_label(index, chart)
                    ),
                ),
                other => other,
            })?;
        }
        for entry in &k.components {
            if is_remote(entry) {
                return Err(RenderError::Remote {
                    file: file.to_path_buf(),
                    url: entry.clone(),
                });
            }
            let path = crate::loader::normalize(&dir.join(entry));
            self.repo.check(&path)?;
            let component = self.load_kustomization(&path)?;
            let component_file = kustomization_file(&path);
            if component.empty {
                return Err(RenderError::invalid(
                    &component_file,
                    "kustomization.yaml is empty",
                ));
            }
            self.set_schema(&path, &component_file, &component, false)?;
            if !component.is_component {
                return Err(RenderError::invalid(
                    &component_file,
                    "listed under components but its kind is not Component",
                ));
            }
            if self.stack.contains(&path) {
                let chain: Vec<String> =
                    self.stack.iter().map(|d| d.display().to_string()).collect();
                return Err(RenderError::Cycle {
                    path,
                    chain: chain.join(" -> "),
                });
            }
            self.stack.push(path.clone());
            let result = self.accumulate(&path, &component_file, &component, resources, config);
            self.stack.pop();
            result?;
        }
        self.transform(dir, file, k, resources, config)?;
        vars::bind(resources, &k.vars).map_err(|m| RenderError::transform(file, m))?;
        vars::merge(&mut config.vars, &k.vars).map_err(|m| RenderError::transform(file, m))
    }

    /// Runs one generator of the kustomization in `dir` (whose file is `file`).
    fn run_generator(
        &self,
        (dir, file): (&Path, &Path),
        k: &Kustomization,
        args: &GeneratorArgs,
        kind: GeneratedKind,
        resources: &mut Vec<Resource>,
        seen: &mut IdSet,
    ) -> Result<()> {
        let (object, needs_hash) =
            generators::generate(args, &k.generator_options, kind, dir, self.repo, file)?;
        let kind_name = if kind == GeneratedKind::ConfigMap {
            "ConfigMapGenerator"
        } else {
            "SecretGenerator"
        };
        let mut generated = Resource::new(
            object,
            Some(Origin::Generator {
                kustomization: file.to_path_buf(),
                kind: kind_name,
            }),
        );
        generated.needs_hash = needs_hash;
        self.set_origin(&mut generated);
        let id = generated.id();
        let existing = resources.iter().position(|r| {
            r.kind() == id.kind
                && r.all_names().any(|n| n == id.name)
                && (args.namespace.is_none()
                    || r.all_namespaces()
                        .any(|n| crate::resource::ns_eq(n, &id.namespace)))
        });
        match (args.behavior, existing) {
            (Behavior::Create, _) => add_resources(resources, seen, [generated], file),
            (_, None) => Err(RenderError::invalid(
                file,
                format!("id {id} does not exist; cannot merge or replace"),
            )),
            (behavior, Some(index)) => {
                let target = &mut resources[index];
                merge_generated(target, &generated.object, behavior);
                target.needs_hash = target.needs_hash && needs_hash;
                Ok(())
            }
        }
    }

    /// Reads a resource file: every non-empty document, with `List` kinds flattened.
    /// Each object comes with the pointers of its map values written empty (none for `List` items).
    fn load_objects(&self, path: &Path) -> Result<Vec<(Value, Vec<String>)>> {
        let text = self.repo.read_text(path)?;
        let documents = yaml::load_documents_marking_empty(&text, self.repo.yaml_budget())
            .map_err(|source| RenderError::Yaml {
                path: path.to_path_buf(),
                source,
            })?;
        let mut objects = Vec::new();
        for (document, empty_values) in documents {
            let mut flattened = Vec::new();
            let is_list = flatten_document(document, path, &mut flattened)?;
            let mut empty_values = Some(empty_values).filter(|_| !is_list);
            for object in flattened {
                objects.push((object, empty_values.take().unwrap_or_default()));
            }
        }
        Ok(objects)
    }

    /// Reads a single-document YAML (or JSON) file named relative to `dir`.
    fn load_single(&self, dir: &Path, entry: &str) -> Result<(Value, PathBuf)> {
        let path = self.repo.resolve(dir, entry, dir)?;
        let text = self.repo.read_text(&path)?;
        let value = yaml::load_one_within(&text, self.repo.yaml_budget()).map_err(|source| {
            RenderError::Yaml {
                path: path.clone(),
                source,
            }
        })?;
        Ok((value, path))
    }

    /// Step 2.5: the built-in transformers in kustomize's order, then the `transformers` entries.
    fn transform(
        &mut self,
        dir: &Path,
        file: &Path,
        k: &Kustomization,
        resources: &mut Vec<Resource>,
        config: &TransformerConfig,
    ) -> Result<()> {
        let invalid = |m: String| RenderError::invalid(file, m);
        // Untargeted strategic-merge patches find their object through an index of names, kept while only
        // such patches run (they never rename, and a deletion drops the index).
        let mut names = None;
        if !k.patches_strategic_merge.is_empty() {
            for entry in &k.patches_strategic_merge {
                self.apply_strategic_merge_entry(dir, file, entry, resources, &mut names)?;
            }
            self.record(
                resources,
                file,
                "PatchStrategicMergeTransformer",
                None,
                None,
            );
        }
        for entry in &k.patches {
            self.apply_patch(dir, file, entry, resources, false, &mut names)?;
            self.record(resources, file, "PatchTransformer", None, None);
        }
        if let Some(namespace) = k.namespace.as_ref().filter(|n| !n.is_empty()) {
            let args = NamespaceArgs {
                namespace: namespace.clone(),
                specs: config.namespace.clone(),
                ..NamespaceArgs::default()
            };
            transformers::namespace(resources, &args)
                .map_err(|m| RenderError::transform(file, m))?;
            self.record(resources, file, "NamespaceTransformer", None, None);
        }
        if let Some(prefix) = k.name_prefix.as_ref().filter(|p| !p.is_empty()) {
            transformers::affix(resources, prefix, false, &config.name_prefix);
            self.record(resources, file, "PrefixTransformer", None, None);
        }
        if let Some(suffix) = k.name_suffix.as_ref().filter(|s| !s.is_empty()) {
            transformers::affix(resources, suffix, true, &config.name_suffix);
            self.record(resources, file, "SuffixTransformer", None, None);
        }
        if !k.labels.is_empty() || !k.common_labels.is_empty() {
            for entry in &k.labels {
                let specs = transformers::label_entry_specs(
                    &entry.fields,
                    entry.include_selectors,
                    entry.include_templates,
                    config,
                )
                .map_err(invalid)?;
                transformers::set_pairs(resources, &entry.pairs, &specs);
                self.record(resources, file, "LabelTransformer", None, None);
            }
            transformers::set_pairs(resources, &k.common_labels, &config.common_labels);
            self.record(resources, file, "LabelTransformer", None, None);
        }
        if !k.common_annotations.is_empty() {
            transformers::set_pairs(resources, &k.common_annotations, &config.common_annotations);
            self.record(resources, file, "AnnotationsTransformer", None, None);
        }
        for entry in &k.patches_json6902 {
            self.apply_patch(dir, file, entry, resources, true, &mut None)?;
            self.record(resources, file, "PatchJson6902Transformer", None, None);
        }
        for (name, count) in &k.replicas {
            transformers::replicas(resources, name, count, &config.replicas)
                .map_err(|m| RenderError::transform(file, m))?;
            self.record(resources, file, "ReplicaCountTransformer", None, None);
        }
        for image in &k.images {
            transformers::images(resources, image, &config.images);
            self.record(resources, file, "ImageTagTransformer", None, None);
        }
        if !k.replacements.is_empty() {
            self.run_replacements(dir, file, k, resources)?;
            self.record(resources, file, "ReplacementTransformer", None, None);
        }
        self.run_transformer_entries(dir, file, k, resources)
    }

    /// One `patchesStrategicMerge` entry: a file or an inline patch, each document applied by id.
    fn apply_strategic_merge_entry(
        &self,
        dir: &Path,
        file: &Path,
        entry: &str,
        resources: &mut Vec<Resource>,
        names: &mut Option<NameIndex>,
    ) -> Result<()> {
        let (text, source) = if looks_inline(entry) {
            (entry.to_string(), file.to_path_buf())
        } else {
            let path = self.repo.resolve(dir, entry, dir)?;
            (self.repo.read_text(&path)?, path)
        };
        let documents =
            yaml::load_documents_within(&text, self.repo.yaml_budget()).map_err(|source_err| {
                RenderError::Yaml {
                    path: source.clone(),
                    source: source_err,
                }
            })?;
        for document in documents.into_iter().filter(|d| !d.is_null()) {
            apply_untargeted_smp(resources, &document, &source, names)?;
        }
        Ok(())
    }

    /// The `transformers` field: built-in transformer configurations, inline, in files, or produced by
    /// building a kustomization directory; each configuration runs in order.
    fn run_transformer_entries(
        &mut self,
        dir: &Path,
        file: &Path,
        k: &Kustomization,
        resources: &mut Vec<Resource>,
    ) -> Result<()> {
        // kustomize takes the inline configurations first, then loads the files and directories in order.
        let mut configs: Vec<(Value, PathBuf)> = Vec::new();
        for entry in k.transformers.iter().filter(|e| looks_inline(e)) {
            let documents =
                yaml::load_documents_within(entry, self.repo.yaml_budget()).map_err(|e| {
                    RenderError::Yaml {
                        path: file.to_path_buf(),
                        source: e,
                    }
                })?;
            configs.extend(
                documents
                    .into_iter()
                    .filter(|d| !d.is_null())
                    .map(|d| (d, file.to_path_buf())),
            );
        }
        for entry in k.transformers.iter().filter(|e| !looks_inline(e)) {
            if is_remote(entry) {
                return Err(RenderError::Remote {
                    file: file.to_path_buf(),
                    url: entry.clone(),
                });
            }
            let path = crate::loader::normalize(&dir.join(entry));
            if path.is_dir() {
                // kustomize builds the directory (without the root-only steps) and uses what it
                // produces as transformer configurations.
                self.repo.check(&path)?;
                let (_, built, _) = self.build_dir(&path, false)?;
                for resource in built {
                    let source = match &resource.origin {
                        Some(Origin::File(source)) => source.clone(),
                        _ => kustomization_file(&path),
                    };
                    configs.push((resource.object, source));
                }
            } else {
                let path = self.repo.resolve(dir, entry, dir)?;
                for (object, _) in self.load_objects(&path)? {
                    configs.push((object, path.clone()));
                }
            }
        }
        {
            for (config, source) in configs {
                let transformers = BuiltinTransformer::parse(&config, &source)?;
                for transformer in transformers {
                    self.run_builtin(dir, &source, transformer, resources)?;
                }
                let kind = str_at(&config, &["kind"]).unwrap_or_default();
                let name = str_at(&config, &["metadata", "name"]);
                let namespace = str_at(&config, &["metadata", "namespace"]);
                self.record(resources, &source, kind, name, namespace);
            }
        }
        Ok(())
    }

    fn run_builtin(
        &self,
        dir: &Path,
        source: &Path,
        transformer: BuiltinTransformer,
        resources: &mut Vec<Resource>,
    ) -> Result<()> {
        match transformer {
            BuiltinTransformer::Pairs { pairs, specs } => {
                transformers::set_pairs(resources, &pairs, &specs);
            }
            BuiltinTransformer::Namespace(args) => {
                transformers::namespace(resources, &args)
                    .map_err(|m| RenderError::transform(source, m))?;
            }
            BuiltinTransformer::Affix {
                affix,
                suffix,
                specs,
            } => transformers::affix(resources, &affix, suffix, &specs),
            BuiltinTransformer::Image { image, specs } => {
                transformers::images(resources, &image, &specs);
            }
            BuiltinTransformer::Replicas { name, count, specs } => {
                transformers::replicas(resources, &name, &count, &specs)
                    .map_err(|m| RenderError::transform(source, m))?;
            }
            BuiltinTransformer::Patch(entry) => {
                self.apply_patch(dir, source, &entry, resources, false, &mut None)?;
            }
            BuiltinTransformer::Json6902(entry) => {
                self.apply_patch(dir, source, &entry, resources, true, &mut None)?;
            }
            BuiltinTransformer::StrategicMerge(entries) => {
                for entry in &entries {
                    self.apply_strategic_merge_entry(dir, source, entry, resources, &mut None)?;
                }
            }
            BuiltinTransformer::Replacements(list) => {
                replacements::apply(resources, &list)
                    .map_err(|m| RenderError::transform(source, m))?;
            }
            BuiltinTransformer::Hash => {
                for resource in resources.iter_mut().filter(|r| r.needs_hash) {
                    resource.store_previous_id();
                    let hash = generators::content_hash(&resource.object);
                    let name = format!("{}-{hash}", resource.name());
                    resource.set_name(name);
                }
            }
            BuiltinTransformer::ValueAdd {
                value,
                mut targets,
                target_file,
            } => {
                let value = if value.is_empty() {
                    dir.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    value
                };
                if let Some(target_file) = target_file {
                    let (document, path) = self.load_single(dir, &target_file)?;
                    targets.extend(kustomization::ValueAddTarget::parse_list(
                        document.get("targets"),
                        &path,
                    )?);
                }
                if targets.is_empty() {
                    return Err(RenderError::invalid(
                        source,
                        "ValueAddTransformer: must specify at least one target",
                    ));
                }
                transformers::value_add(resources, &value, &targets)
                    .map_err(|m| RenderError::transform(source, m))?;
            }
        }
        Ok(())
    }

    /// The `replacements` field, after the other built-in transformers.
    fn run_replacements(
        &self,
        dir: &Path,
        file: &Path,
        k: &Kustomization,
        resources: &mut [Resource],
    ) -> Result<()> {
        let mut all = Vec::new();
        for entry in &k.replacements {
            match entry {
                ReplacementEntry::Inline(replacement) => all.push((**replacement).clone()),
                ReplacementEntry::Path(path) => {
                    let path = self.repo.resolve(dir, path, dir)?;
                    let text = self.repo.read_text(&path)?;
                    let value = yaml::load_one_within(&text, self.repo.yaml_budget()).map_err(
                        |source| RenderError::Yaml {
                            path: path.clone(),
                            source,
                        },
                    )?;
                    all.extend(
                        Replacement::parse_file(&value)
                            .map_err(|m| RenderError::invalid(&path, m))?,
                    );
                }
            }
            if all.len() > crate::replacements::MAX_REPLACEMENTS {
                return Err(RenderError::invalid(file, "too many replacements"));
            }
        }
        replacements::apply(resources, &all).map_err(|m| RenderError::transform(file, m))
    }

    fn apply_patch(
        &self,
        dir: &Path,
        file: &Path,
        entry: &PatchEntry,
        resources: &mut Vec<Resource>,
        json_only: bool,
        names: &mut Option<NameIndex>,
    ) -> Result<()> {
        let (text, source) = match (&entry.patch, &entry.path) {
            (Some(inline), _) => (inline.clone(), file.to_path_buf()),
            (None, Some(path)) => {
                let path = self.repo.resolve(dir, path, dir)?;
                (self.repo.read_text(&path)?, path)
            }
            (None, None) => {
                return Err(RenderError::invalid(file, "patch without path or content"));
            }
        };
        let documents: Vec<Value> = yaml::load_documents_within(&text, self.repo.yaml_budget())
            .map_err(|source_err| RenderError::Yaml {
                path: source.clone(),
                source: source_err,
            })?
            .into_iter()
            .filter(|d| !d.is_null())
            .collect();
        let is_json = documents.len() == 1 && documents[0].is_array();
        if json_only && !is_json {
            return Err(RenderError::invalid(
                &source,
                "patchesJson6902 content must be a list of operations",
            ));
        }
        let Some(target) = &entry.target else {
            if is_json {
                return Err(RenderError::invalid(
                    &source,
                    "a JSON6902 patch requires a target",
                ));
            }
            for document in &documents {
                apply_untargeted_smp(resources, document, &source, names)?;
            }
            return Ok(());
        };
        let selector = Selector::compile(target).map_err(|m| RenderError::invalid(file, m))?;
        // A targeted patch may rename (JSON6902) or delete objects.
        *names = None;
        if is_json {
            for resource in resources.iter_mut().filter(|r| selector.matches(r)) {
                if !json_only {
                    // The patch transformer records the id first (the deprecated field does not).
                    resource.store_previous_id();
                }
                patch::json6902(&mut resource.object, &documents[0]).map_err(|m| {
                    RenderError::transform(&source, format!("{m} (on {})", resource.id()))
                })?;
            }
            return Ok(());
        }
        if documents.len() != 1 {
            return Err(RenderError::invalid(
                &source,
                "a strategic-merge patch with a target must hold exactly one document",
            ));
        }
        let mut deleted = Vec::new();
        for (index, resource) in resources.iter_mut().enumerate() {
            if !selector.matches(resource) {
                continue;
            }
            let mut document = documents[0].clone();
            let changes = IdentityChanges {
                name: entry.allow_name_change,
                kind: entry.allow_kind_change,
            };
            align_identity(&mut document, resource, changes);
            if changes.name || changes.kind {
                // The patch transformer records the id before a patch that may change it.
                resource.store_previous_id();
            }
            let old_name = resource.name().to_string();
            if apply_smp(resource, &document) == Merged::Deleted {
                deleted.push(index);
            } else if resource.name() != old_name {
                resource.previous_names.push(old_name);
            }
        }
        for index in deleted.into_iter().rev() {
            resources.remove(index);
        }
        Ok(())
    }
}

/// The ids of the objects accumulated so far, to refuse a duplicate without a scan.
type IdSet = std::collections::HashSet<ResId>;

fn id_set(resources: &[Resource]) -> IdSet {
    resources.iter().map(|r| r.id().normalized()).collect()
}

/// Adds resources, refusing a second object with the same id; `seen` holds the ids of `resources`.
fn add_resources(
    resources: &mut Vec<Resource>,
    seen: &mut IdSet,
    new: impl IntoIterator<Item = Resource>,
    file: &Path,
) -> Result<()> {
    for resource in new {
        let id = resource.id();
        if !seen.insert(id.clone().normalized()) {
            return Err(RenderError::DuplicateId {
                path: file.to_path_buf(),
                id: id.to_string(),
            });
        }
        resources.push(resource);
    }
    Ok(())
}

fn flatten_document(document: Value, path: &Path, out: &mut Vec<Value>) -> Result<bool> {
    match document {
        Value::Null => Ok(false),
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind.ends_with("List") && map.contains_key("items") {
                if let Some(Value::Array(items)) = map.get("items") {
                    for item in items {
                        flatten_document(item.clone(), path, out)?;
                    }
                }
                return Ok(true);
            }
            if kind.is_empty() {
                return Err(RenderError::invalid(
                    path,
                    "missing kind in resource document",
                ));
            }
            if map.get("metadata").and_then(|m| m.get("name")).is_none() {
                return Err(RenderError::invalid(
                    path,
                    format!("missing metadata.name in {kind} document"),
                ));
            }
            out.push(Value::Object(map));
            Ok(false)
        }
        _ => Err(RenderError::invalid(
            path,
            "a resource document must be a mapping",
        )),
    }
}

fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
}

fn looks_inline(entry: &str) -> bool {
    entry.contains('\n') || entry.contains(": ")
}

/// The objects by every name they have had (positions in the accumulator).
type NameIndex = std::collections::HashMap<String, Vec<usize>>;

fn name_index(resources: &[Resource]) -> NameIndex {
    let mut index = NameIndex::new();
    for (position, resource) in resources.iter().enumerate() {
        for name in resource.all_names() {
            let list = index.entry(name.to_string()).or_default();
            if list.last() != Some(&position) {
                list.push(position);
            }
        }
    }
    index
}

/// Applies an SMP document to the resource its id names (by current or any earlier name).
fn apply_untargeted_smp(
    resources: &mut Vec<Resource>,
    document: &Value,
    source: &Path,
    names: &mut Option<NameIndex>,
) -> Result<()> {
    let id = ResId::of(document);
    let index = names.get_or_insert_with(|| name_index(resources));
    let matches: Vec<usize> = index
        .get(&id.name)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|&i| {
            let r = &resources[i];
            r.kind() == id.kind
                && r.group() == id.group
                && (id.namespace.is_empty()
                    || r.all_namespaces()
                        .any(|n| crate::resource::ns_eq(n, &id.namespace)))
        })
        .collect();
    let index = match matches.as_slice() {
        [] => {
            return Err(RenderError::transform(
                source,
                format!("no matches for id {id}; failed to find unique target for patch"),
            ));
        }
        [index] => *index,
        _ => {
            return Err(RenderError::transform(
                source,
                format!("multiple matches for id {id}; patch is ambiguous"),
            ));
        }
    };
    let mut document = document.clone();
    align_identity(&mut document, &resources[index], IdentityChanges::default());
    if apply_smp(&mut resources[index], &document) == Merged::Deleted {
        resources.remove(index);
        *names = None;
    }
    Ok(())
}

/// What a strategic-merge patch may change of its object's identity (`options` of a `patches` entry).
#[derive(Debug, Clone, Copy, Default)]
struct IdentityChanges {
    name: bool,
    kind: bool,
}

/// Makes the patch carry the resource's own identity so that merging never renames it (unless `changes`
/// allow a new name or kind; the namespace always stays).
fn align_identity(document: &mut Value, resource: &Resource, changes: IdentityChanges) {
    let Value::Object(map) = document else { return };
    for key in ["apiVersion", "kind"] {
        if changes.kind {
            continue;
        }
        if map.contains_key(key)
            && let Some(v) = resource.object.get(key)
        {
            map.insert(key.into(), v.clone());
        }
    }
    if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
        for key in ["name", "namespace"] {
            if key == "name" && changes.name {
                continue;
            }
            if metadata.contains_key(key) {
                match get_at(&resource.object, &["metadata", key]) {
                    Some(v) => {
                        metadata.insert(key.into(), v.clone());
                    }
                    None => {
                        metadata.remove(key);
                    }
                }
            }
        }
    }
}

fn apply_smp(resource: &mut Resource, document: &Value) -> Merged {
    let id = resource.id();
    let merged = patch::strategic_merge(
        &mut resource.object,
        document,
        &id.group,
        &id.version,
        &id.kind,
    );
    // kustomize's merge drops the map fields that were written empty (`key:`); an explicit null stays.
    let object = &mut resource.object;
    resource.empty_values.retain(|pointer| {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            return false;
        };
        let key = key.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = object.pointer_mut(parent)
            && map.get(&key).is_some_and(Value::is_null)
        {
            map.remove(&key);
        }
        false
    });
    merged
}

/// `behavior: merge|replace` of a generated object into an existing one.
fn merge_generated(target: &mut Resource, generated: &Value, behavior: Behavior) {
    for field in ["data", "binaryData"] {
        let new = generated
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        match behavior {
            Behavior::Replace => {
                if new.is_empty() {
                    if let Value::Object(map) = &mut target.object {
                        map.remove(field);
                    }
                } else {
                    set_at(&mut target.object, &[field], Value::Object(new));
                }
            }
            _ => {
                if new.is_empty() {
                    continue;
                }
                let mut merged: Map<String, Value> = target
                    .object
                    .get(field)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                merged.extend(new);
                set_at(&mut target.object, &[field], Value::Object(merged));
            }
        }
    }
    for field in ["labels", "annotations"] {
        if let Some(Value::Object(new)) = get_at(generated, &["metadata", field]).cloned() {
            for (k, v) in new {
                // A merge keeps the origin recorded for the object it merges into.
                if behavior == Behavior::Merge
                    && k == ORIGIN_ANNOTATION
                    && get_at(
                        &target.object,
                        &["metadata", "annotations", ORIGIN_ANNOTATION],
                    )
                    .is_some()
                {
                    continue;
                }
                set_at(&mut target.object, &["metadata", field, &k], v);
            }
        }
    }
    for field in ["type", "immutable"] {
        if let Some(v) = generated
            .get(field)
            .filter(|_| behavior == Behavior::Replace || field == "immutable")
        {
            set_at(&mut target.object, &[field], v.clone());
        }
    }
}
