//! Field specs and transformer configurations (`configurations:` files): which fields of which kinds the
//! built-in transformers touch, as kustomize's `nameReference`/`namespace`/`commonLabels`/`varReference`… lists.

use serde_json::{Map, Value};

use crate::resource::Resource;

/// Bound on the number of field specs one build accumulates from configuration files.
const MAX_FIELD_SPECS: usize = 10_000;

/// One field spec: a path (`/`-separated, lists entered implicitly or with `[]`) on objects of a kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSpec {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub path: Vec<String>,
    pub create: bool,
}

impl FieldSpec {
    /// Parses one `{group, version, kind, path, create}` entry.
    pub(crate) fn parse(value: &Value) -> Result<FieldSpec, String> {
        let map = value
            .as_object()
            .ok_or("a field spec must be a mapping with a path")?;
        let text = |key: &str| -> Result<Option<String>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Ok(Some(
                    scalar_text(other).ok_or(format!("field spec '{key}' must be a string"))?,
                )),
            }
        };
        let path = text("path")?.ok_or("a field spec needs a path")?;
        Ok(FieldSpec {
            group: text("group")?,
            version: text("version")?,
            kind: text("kind")?,
            path: split_path(&path),
            create: map.get("create").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// A spec from a compact `path` and optional kind.
    pub(crate) fn new(group: &str, kind: &str, path: &str, create: bool) -> FieldSpec {
        FieldSpec::with_version(group, "", kind, path, create)
    }

    /// A spec from a compact `path` and optional group, version and kind (empty = any).
    pub(crate) fn with_version(
        group: &str,
        version: &str,
        kind: &str,
        path: &str,
        create: bool,
    ) -> FieldSpec {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        FieldSpec {
            group: opt(group),
            version: opt(version),
            kind: opt(kind),
            path: split_path(path),
            create,
        }
    }

    /// Whether the spec applies to the resource's group, version and kind (unset parts match anything).
    pub(crate) fn matches(&self, resource: &Resource) -> bool {
        let (group, version) = resource.group_version();
        self.matches_gvk(group, version, resource.kind())
    }

    /// kustomize's `effectivelyEquals`: the same path, and this spec's kind is selected by the other's.
    fn effectively_equals(&self, other: &FieldSpec) -> bool {
        self.path == other.path
            && other
                .group
                .as_deref()
                .is_none_or(|g| self.group.as_deref() == Some(g))
            && other
                .version
                .as_deref()
                .is_none_or(|v| self.version.as_deref() == Some(v))
            && other
                .kind
                .as_deref()
                .is_none_or(|k| self.kind.as_deref() == Some(k))
    }

    /// The path as written in a configuration (`/`-separated).
    pub(crate) fn path_is(&self, path: &[&str]) -> bool {
        self.path.len() == path.len() && self.path.iter().zip(path).all(|(a, b)| a == b)
    }

    pub(crate) fn matches_gvk(&self, group: &str, version: &str, kind: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == group)
            && self.version.as_deref().is_none_or(|v| v == version)
            && self.kind.as_deref().is_none_or(|k| k == kind)
    }

    /// Calls `f` on every value at the spec's path in `object`; lists along the way are entered element by
    /// element. With `create`, missing maps along the path and the final field (as null) are created.
    pub(crate) fn visit(&self, object: &mut Value, f: &mut dyn FnMut(&mut Value)) {
        visit(object, &self.path, self.create, f);
    }
}

/// Splits a field-spec path on `/` (a `\/` stays in the segment).
pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in path.trim_start_matches('/').split('/') {
        match out.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(part);
            }
            _ => out.push(part.to_string()),
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn visit(value: &mut Value, path: &[String], create: bool, f: &mut dyn FnMut(&mut Value)) {
    let Some((first, rest)) = path.split_first() else {
        f(value);
        return;
    };
    match value {
        Value::Array(items) => {
            for item in items {
                visit(item, path, create, f);
            }
        }
        Value::Object(map) => {
            let (field, is_seq) = match first.strip_suffix("[]") {
                Some(field) => (field, true),
                None => (first.as_str(), false),
            };
            if !map.contains_key(field) {
                if !create || is_seq {
                    return;
                }
                let new = if rest.is_empty() {
                    Value::Null
                } else {
                    Value::Object(Map::new())
                };
                map.insert(field.to_string(), new);
            }
            let Some(child) = map.get_mut(field) else {
                return;
            };
            if child.is_null() && !rest.is_empty() {
                if !create {
                    return;
                }
                *child = Value::Object(Map::new());
            }
            visit(child, rest, create, f);
        }
        _ => {}
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(crate::yaml::format_number_plain(n)),
        _ => None,
    }
}

/// A `nameReference` entry: fields (in other objects) that name an object of `kind`.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameBackRef {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: String,
    pub specs: Vec<FieldSpec>,
}

/// Adds `spec` to `list` unless an equivalent spec is there (kustomize's `FsSlice.MergeOne`): same path, and
/// the existing spec is selected by the new one's group, version and kind. Equivalent specs that disagree on
/// `create` conflict.
pub(crate) fn merge_one(list: &mut Vec<FieldSpec>, spec: FieldSpec) -> Result<(), String> {
    match list.iter().find(|s| s.effectively_equals(&spec)) {
        Some(existing) if existing.create != spec.create => Err(format!(
            "conflicting fieldspecs for path '{}'",
            spec.path.join("/")
        )),
        Some(_) => Ok(()),
        None => {
            list.push(spec);
            Ok(())
        }
    }
}

/// The field specs the built-in transformers use: kustomize's defaults, extended by `configurations:` files
/// (and `crds:` schemas) of the kustomization and of every kustomization below it.
#[derive(Debug, Clone, Default)]
pub(crate) struct TransformerConfig {
    /// Extra `nameReference` entries (the built-in ones are in `nameref`).
    pub name_reference: Vec<NameBackRef>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    /// Specs `labels` entries always use (the `labels` key of a configuration file).
    pub labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    /// Extra `varReference` specs (the built-in ones are in `vars`).
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    /// Vars declared so far (they travel with the configuration up the build).
    pub vars: Vec<crate::vars::Var>,
}

/// kustomize's default field specs: (group, version, kind, path, create); empty parts match anything.
type DefaultSpec = (&'static str, &'static str, &'static str, &'static str, bool);

/// Where labels go besides selectors: metadata and the templates of workloads.
const METADATA_LABELS: &[DefaultSpec] = &[
    ("", "", "", "metadata/labels", true),
    (
        "",
        "v1",
        "ReplicationController",
        "spec/template/metadata/labels",
        true,
    ),
    ("", "", "Deployment", "spec/template/metadata/labels", true),
    ("", "", "ReplicaSet", "spec/template/metadata/labels", true),
    ("", "", "DaemonSet", "spec/template/metadata/labels", true),
    (
        "apps",
        "",
        "StatefulSet",
        "spec/template/metadata/labels",
        true,
    ),
    (
        "apps",
        "",
        "StatefulSet",
        "spec/volumeClaimTemplates[]/metadata/labels",
        true,
    ),
    ("batch", "", "Job", "spec/template/metadata/labels", true),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/metadata/labels",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/labels",
        true,
    ),
];

/// Label selectors `commonLabels` (and `labels` with `includeSelectors`) reach, besides [`METADATA_LABELS`].
const SELECTOR_LABELS: &[DefaultSpec] = &[
    ("", "v1", "Service", "spec/selector", true),
    ("", "v1", "ReplicationController", "spec/selector", true),
    ("", "", "Deployment", "spec/selector/matchLabels", true),
    ("", "", "ReplicaSet", "spec/selector/matchLabels", true),
    ("", "", "DaemonSet", "spec/selector/matchLabels", true),
    ("apps", "", "StatefulSet", "spec/selector/matchLabels", true),
    ("batch", "", "Job", "spec/selector/matchLabels", false),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/selector/matchLabels",
        false,
    ),
    (
        "policy",
        "",
        "PodDisruptionBudget",
        "spec/selector/matchLabels",
        false,
    ),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/podSelector/matchLabels",
        false,
    ),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/ingress/from/podSelector/matchLabels",
        false,
    ),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/egress/to/podSelector/matchLabels",
        false,
    ),
];

/// Pod affinity and topology-spread selectors of Deployments and StatefulSets (also reached by selectors).
const AFFINITY_LABEL_PATHS: &[&str] = &[
    "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
];

const COMMON_ANNOTATIONS: &[DefaultSpec] = &[
    ("", "", "", "metadata/annotations", true),
    (
        "",
        "v1",
        "ReplicationController",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "Deployment",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "ReplicaSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "DaemonSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "",
        "",
        "StatefulSet",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "Job",
        "spec/template/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/metadata/annotations",
        true,
    ),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/annotations",
        true,
    ),
];

const NAMESPACE: &[DefaultSpec] = &[
    ("", "", "Namespace", "metadata/name", true),
    (
        "apiregistration.k8s.io",
        "",
        "APIService",
        "spec/service/namespace",
        true,
    ),
    (
        "apiextensions.k8s.io",
        "",
        "CustomResourceDefinition",
        "spec/conversion/webhook/clientConfig/service/namespace",
        false,
    ),
];

const IMAGES: &[DefaultSpec] = &[
    ("", "", "", "spec/containers[]/image", true),
    ("", "", "", "spec/initContainers[]/image", true),
    ("", "", "", "spec/template/spec/containers[]/image", true),
    (
        "",
        "",
        "",
        "spec/template/spec/initContainers[]/image",
        true,
    ),
];

const REPLICAS: &[DefaultSpec] = &[
    ("", "", "Deployment", "spec/replicas", true),
    ("", "", "ReplicationController", "spec/replicas", true),
    ("", "", "ReplicaSet", "spec/replicas", true),
    ("", "", "StatefulSet", "spec/replicas", true),
];

fn specs(table: &[DefaultSpec]) -> Vec<FieldSpec> {
    table
        .iter()
        .map(|(group, version, kind, path, create)| {
            FieldSpec::with_version(group, version, kind, path, *create)
        })
        .collect()
}

impl TransformerConfig {
    /// kustomize's built-in field specs.
    pub(crate) fn defaults() -> &'static TransformerConfig {
        static DEFAULTS: std::sync::OnceLock<TransformerConfig> = std::sync::OnceLock::new();
        DEFAULTS.get_or_init(|| {
            let metadata_labels = specs(METADATA_LABELS);
            let mut common_labels = specs(SELECTOR_LABELS);
            for kind in ["Deployment", "StatefulSet"] {
                for path in AFFINITY_LABEL_PATHS {
                    common_labels.push(FieldSpec::with_version("apps", "", kind, path, false));
                }
            }
            common_labels.extend(metadata_labels.iter().cloned());
            TransformerConfig {
                namespace: specs(NAMESPACE),
                common_labels,
                template_labels: metadata_labels,
                common_annotations: specs(COMMON_ANNOTATIONS),
                name_prefix: vec![FieldSpec::with_version("", "", "", "metadata/name", false)],
                name_suffix: vec![FieldSpec::with_version("", "", "", "metadata/name", false)],
                images: specs(IMAGES),
                replicas: specs(REPLICAS),
                ..TransformerConfig::default()
            }
        })
    }

    /// Parses a configuration document (kustomize reads it strictly: unknown keys are errors).
    pub(crate) fn parse(value: &Value) -> Result<TransformerConfig, String> {
        let mut config = TransformerConfig::default();
        let map = match value {
            Value::Null => return Ok(config),
            Value::Object(map) => map,
            _ => return Err("a transformer configuration must be a mapping".into()),
        };
        for (key, entries) in map {
            let list: &[Value] = match entries {
                Value::Null => &[],
                Value::Array(items) => items,
                _ => return Err(format!("'{key}' must be a list of field specs")),
            };
            if key == "nameReference" {
                for entry in list {
                    let text = |field: &str| {
                        entry
                            .get(field)
                            .and_then(Value::as_str)
                            .filter(|g| !g.is_empty())
                            .map(String::from)
                    };
                    let kind = text("kind").ok_or("a nameReference entry needs a kind")?;
                    let mut specs = Vec::new();
                    for spec in entry
                        .get("fieldSpecs")
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice)
                    {
                        merge_one(
                            &mut specs,
                            FieldSpec::parse(spec).map_err(|e| format!("{key}: {e}"))?,
                        )?;
                    }
                    config.add_name_reference(NameBackRef {
                        group: text("group"),
                        version: text("version"),
                        kind,
                        specs,
                    })?;
                }
                continue;
            }
            let target = match key.as_str() {
                "namespace" => &mut config.namespace,
                "commonLabels" => &mut config.common_labels,
                "labels" => &mut config.labels,
                "templateLabels" => &mut config.template_labels,
                "commonAnnotations" => &mut config.common_annotations,
                "namePrefix" => &mut config.name_prefix,
                "nameSuffix" => &mut config.name_suffix,
                "varReference" => &mut config.var_reference,
                "images" => &mut config.images,
                "replicas" => &mut config.replicas,
                other => return Err(format!("unknown transformer configuration field '{other}'")),
            };
            for spec in list {
                merge_one(
                    target,
                    FieldSpec::parse(spec).map_err(|e| format!("{key}: {e}"))?,
                )?;
            }
        }
        Ok(config)
    }

    /// Adds a `nameReference` entry, merging its specs into an entry for the same group, version and kind.
    pub(crate) fn add_name_reference(&mut self, back: NameBackRef) -> Result<(), String> {
        match self
            .name_reference
            .iter_mut()
            .find(|b| b.kind == back.kind && b.group == back.group && b.version == back.version)
        {
            Some(existing) => {
                for spec in back.specs {
                    merge_one(&mut existing.specs, spec)?;
                }
            }
            None => self.name_reference.push(back),
        }
        Ok(())
    }

    /// Adds another configuration's specs (kustomize's `TransformerConfig.Merge`).
    pub(crate) fn merge(&mut self, other: &TransformerConfig) -> Result<(), String> {
        fn extend(into: &mut Vec<FieldSpec>, from: &[FieldSpec]) -> Result<(), String> {
            for spec in from {
                merge_one(into, spec.clone())?;
            }
            Ok(())
        }
        extend(&mut self.namespace, &other.namespace)?;
        extend(&mut self.common_labels, &other.common_labels)?;
        extend(&mut self.labels, &other.labels)?;
        extend(&mut self.template_labels, &other.template_labels)?;
        extend(&mut self.common_annotations, &other.common_annotations)?;
        extend(&mut self.name_prefix, &other.name_prefix)?;
        extend(&mut self.name_suffix, &other.name_suffix)?;
        extend(&mut self.var_reference, &other.var_reference)?;
        extend(&mut self.images, &other.images)?;
        extend(&mut self.replicas, &other.replicas)?;
        crate::vars::merge(&mut self.vars, &other.vars)?;
        for back in &other.name_reference {
            self.add_name_reference(back.clone())?;
        }
        if self.size() > MAX_FIELD_SPECS {
            return Err(format!(
                "transformer configurations hold more than {MAX_FIELD_SPECS} field specs"
            ));
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.namespace.len()
            + self.common_labels.len()
            + self.labels.len()
            + self.template_labels.len()
            + self.common_annotations.len()
            + self.name_prefix.len()
            + self.name_suffix.len()
            + self.var_reference.len()
            + self.images.len()
            + self.replicas.len()
            + self
                .name_reference
                .iter()
                .map(|b| b.specs.len() + 1)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn paths_enter_lists_implicitly_and_create_maps() {
        let spec = FieldSpec::new("", "", "webhooks/clientConfig/service/namespace", true);
        let mut object = json!({"webhooks": [{"clientConfig": {"service": {"name": "a"}}}, {}]});
        spec.visit(&mut object, &mut |v| *v = json!("ns"));
        assert_eq!(
            object,
            json!({"webhooks": [
                {"clientConfig": {"service": {"name": "a", "namespace": "ns"}}},
                {"clientConfig": {"service": {"namespace": "ns"}}}
            ]})
        );
        assert_eq!(split_path("/a/b\\/c/d"), vec!["a", "b/c", "d"]);
    }

    #[test]
    fn configurations_parse_and_merge() {
        let value = crate::yaml::load_one(
            "nameReference:\n- kind: Service\n  version: v1\n  fieldSpecs:\n  - kind: X\n    path: spec/svc\nvarReference:\n- path: data/config\n  kind: ConfigMap\n",
        )
        .unwrap();
        let config = TransformerConfig::parse(&value).unwrap();
        let mut merged = TransformerConfig::default();
        merged.merge(&config).unwrap();
        merged.merge(&config).unwrap();
        assert_eq!(merged.name_reference.len(), 1);
        assert_eq!(merged.name_reference[0].specs.len(), 1);
        assert_eq!(merged.var_reference.len(), 1);
        assert!(TransformerConfig::parse(&json!({"bogus": []})).is_err());
    }
}
