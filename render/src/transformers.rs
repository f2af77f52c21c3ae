//! Built-in transformers: namespace, name prefix/suffix, labels, annotations, replicas and images.

use serde_json::{Map, Value};

use crate::fieldspec::FieldSpec;
use crate::kustomization::ImageEntry;
use crate::resource::{Resource, str_at, visit_path};
use crate::schema;

/// Returns true when the object is cluster-scoped (kinds unknown to the schema are namespaced).
/// A custom schema (`openapi:`) decides for kinds the built-in table does not know, from its `paths`.
pub(crate) fn is_cluster_scoped(resource: &Resource) -> bool {
    let (group, version) = resource.group_version();
    let kind = resource.kind();
    match schema::is_namespaced(group, version, kind) {
        Some(namespaced) => !namespaced,
        None => crate::openapi::current().is_some_and(|custom| {
            let api_version = str_at(&resource.object, &["apiVersion"]).unwrap_or_default();
            custom.is_namespaced(api_version, kind) == Some(false)
        }),
    }
}

/// An object's group, version and kind, read once for matching many field specs.
struct Gvk {
    group: String,
    version: String,
    kind: String,
}

impl Gvk {
    fn of(resource: &Resource) -> Gvk {
        let (group, version) = resource.group_version();
        Gvk {
            group: group.to_string(),
            version: version.to_string(),
            kind: resource.kind().to_string(),
        }
    }

    fn selected_by(&self, spec: &FieldSpec) -> bool {
        spec.matches_gvk(&self.group, &self.version, &self.kind)
    }
}

/// How a namespace transformer treats RoleBinding/ClusterRoleBinding subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SubjectMode {
    /// Subjects named `default` (the kustomization's `namespace` field).
    #[default]
    DefaultOnly,
    /// Every subject of kind ServiceAccount.
    AllServiceAccounts,
    /// No subject.
    None,
}

/// A namespace transformer: the namespace, the field specs, and the options of `NamespaceTransformer`.
#[derive(Debug, Clone, Default)]
pub(crate) struct NamespaceArgs {
    pub namespace: String,
    pub specs: Vec<FieldSpec>,
    pub unset_only: bool,
    pub subjects: SubjectMode,
}

/// Sets the namespace of namespaced objects, of RoleBinding subjects and of the fields the specs name
/// (kustomize's namespace filter); a `v1` Namespace object is renamed.
pub(crate) fn namespace(resources: &mut [Resource], args: &NamespaceArgs) -> Result<(), String> {
    if args.namespace.is_empty() {
        return Ok(());
    }
    let namespace = args.namespace.as_str();
    let set = |field: &mut Value| {
        let empty = match field {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if !args.unset_only || empty {
            *field = Value::String(namespace.into());
        }
    };
    for resource in resources.iter_mut() {
        if resource.object.as_object().is_none_or(Map::is_empty) {
            continue;
        }
        resource.store_previous_id();
        let is_v1 = str_at(&resource.object, &["apiVersion"]) == Some("v1");
        let kind = resource.kind().to_string();
        let binding = kind == "RoleBinding" || kind == "ClusterRoleBinding";
        if !is_cluster_scoped(resource) {
            let current = resource.namespace().to_string();
            let empty = current.is_empty();
            if !args.unset_only || empty {
                resource.set_namespace(namespace);
            }
        }
        if binding && args.subjects != SubjectMode::None {
            visit_path(&mut resource.object, "subjects[]", false, &mut |subject| {
                let selected = match args.subjects {
                    SubjectMode::DefaultOnly => str_at(subject, &["name"]) == Some("default"),
                    _ => str_at(subject, &["kind"]) == Some("ServiceAccount"),
                };
                if selected && let Value::Object(map) = subject {
                    let field = map.entry("namespace").or_insert(Value::Null);
                    set(field);
                }
            });
        }
        for spec in &args.specs {
            if spec.path_is(&["metadata", "namespace"])
                || (!is_v1 && spec.path_is(&["metadata", "name"]))
                || (binding
                    && spec.path_is(&["subjects", "namespace"])
                    && matches!(
                        spec.kind.as_deref(),
                        Some("RoleBinding" | "ClusterRoleBinding")
                    ))
                || !spec.matches(resource)
            {
                continue;
            }
            if spec.path_is(&["metadata", "name"]) {
                // The namespace's own name follows the transformer (and is remembered as a rename).
                let name = resource.name().to_string();
                if !args.unset_only || name.is_empty() {
                    resource.set_name(namespace.to_string());
                }
                continue;
            }
            spec.visit(&mut resource.object, &mut |field| {
                if field.is_null() || !field.is_object() && !field.is_array() {
                    set(field)
                }
            });
        }
    }
    // kustomize refuses a namespace that makes two objects the same.
    let mut seen = std::collections::HashSet::new();
    for resource in resources.iter() {
        let id = resource.id();
        if !seen.insert(id.clone().normalized()) {
            return Err(format!(
                "namespace transformation produces ID conflict: {id}"
            ));
        }
    }
    Ok(())
}

/// kustomize skips these kinds (by original group and kind) when adding a prefix or suffix.
fn skips_prefix_suffix(resource: &Resource) -> bool {
    let id = &resource.original;
    id.kind == "CustomResourceDefinition"
        || id.kind == "Namespace"
        || (id.kind == "APIService" && id.group == "apiregistration.k8s.io")
}

/// `namePrefix` (`suffix == false`) or `nameSuffix`: every spec selecting an object (by its original kind)
/// gets the affix on the scalar it names; `metadata/name` renames the object and records the affix.
pub(crate) fn affix(resources: &mut [Resource], affix: &str, suffix: bool, specs: &[FieldSpec]) {
    let apply = |value: &str| {
        if suffix {
            format!("{value}{affix}")
        } else {
            format!("{affix}{value}")
        }
    };
    for resource in resources.iter_mut() {
        if skips_prefix_suffix(resource) {
            continue;
        }
        for spec in specs {
            let original = &resource.original;
            if !spec.matches_gvk(&original.group, &original.version, &original.kind)
                || !spec.matches(resource)
            {
                continue;
            }
            if spec.path_is(&["metadata", "name"]) {
                if !affix.is_empty() {
                    resource.store_previous_id();
                    if suffix {
                        resource.suffixes.push(affix.to_string());
                    } else {
                        resource.prefixes.push(affix.to_string());
                    }
                }
                let name = apply(resource.name());
                resource.set_name(name);
                continue;
            }
            spec.visit(&mut resource.object, &mut |field| {
                let text = match field {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => crate::yaml::format_number_plain(n),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => String::new(),
                    _ => return,
                };
                *field = Value::String(apply(&text));
            });
        }
    }
}

/// Adds `pairs` to the map at every field spec's path (kustomize's label and annotation transformers).
pub(crate) fn set_pairs(
    resources: &mut [Resource],
    pairs: &[(String, String)],
    specs: &[FieldSpec],
) {
    if pairs.is_empty() {
        return;
    }
    for resource in resources.iter_mut() {
        let gvk = Gvk::of(resource);
        for spec in specs {
            if !gvk.selected_by(spec) {
                continue;
            }
            spec.visit(&mut resource.object, &mut |target| {
                if target.is_null() {
                    *target = Value::Object(Map::new());
                }
                if let Value::Object(map) = target {
                    for (k, v) in pairs {
                        map.insert(k.clone(), Value::String(v.clone()));
                    }
                }
            });
        }
    }
}

/// The field specs of one `labels` entry: its own `fields`, the configured `labels` specs, and selectors
/// and templates (`includeSelectors`) or templates only (`includeTemplates`) or metadata only.
pub(crate) fn label_entry_specs(
    fields: &[FieldSpec],
    include_selectors: bool,
    include_templates: bool,
    config: &crate::fieldspec::TransformerConfig,
) -> Result<Vec<FieldSpec>, String> {
    use crate::fieldspec::merge_one;
    let mut specs = fields.to_vec();
    let merge = |specs: &mut Vec<FieldSpec>, more: &[FieldSpec]| -> Result<(), String> {
        for spec in more {
            merge_one(specs, spec.clone()).map_err(|e| format!("failed to merge labels: {e}"))?;
        }
        Ok(())
    };
    merge(&mut specs, &config.labels)?;
    if include_selectors {
        merge(&mut specs, &config.common_labels)?;
    } else {
        if include_templates {
            merge(&mut specs, &config.template_labels)?;
        }
        merge(
            &mut specs,
            &[FieldSpec::new("", "", "metadata/labels", true)],
        )?;
    }
    Ok(specs)
}

/// `replicas:` sets the count of the named workload in every spec's field; an entry matching nothing is
/// an error listing the kinds tried.
pub(crate) fn replicas(
    resources: &mut [Resource],
    name: &str,
    count: &Value,
    specs: &[FieldSpec],
) -> Result<(), String> {
    let mut matched = false;
    for spec in specs {
        for resource in resources.iter_mut() {
            let id = resource.id();
            let named = resource.all_names().any(|n| n == name) || resource.original.name == name;
            if !named || !spec.matches_gvk(&id.group, &id.version, &id.kind) {
                continue;
            }
            matched = true;
            spec.visit(&mut resource.object, &mut |target| *target = count.clone());
        }
    }
    if !matched {
        let mut kinds: Vec<(i64, String, String)> = specs
            .iter()
            .map(|s| {
                let group = s.group.as_deref().unwrap_or_default();
                let version = s.version.as_deref().unwrap_or_default();
                let kind = s.kind.as_deref().unwrap_or_default();
                let or = |v: &str, p: &str| {
                    if v.is_empty() {
                        p.to_string()
                    } else {
                        v.to_string()
                    }
                };
                (
                    crate::sort::default_rank(kind),
                    format!(
                        "{}_{}_{}",
                        or(group, "~G"),
                        or(version, "~V"),
                        or(kind, "~K")
                    ),
                    format!(
                        "{}.{}.{}",
                        or(kind, "[noKind]"),
                        or(version, "[noVer]"),
                        or(group, "[noGrp]")
                    ),
                )
            })
            .collect();
        kinds.sort();
        let names: Vec<String> = kinds.into_iter().map(|(_, _, n)| n).collect();
        return Err(format!(
            "resource with name {name} does not match a config with the following GVK [{}]",
            names.join(" ")
        ));
    }
    Ok(())
}

/// `images:` rewrites matching image references in every `containers`/`initContainers` list, then in the
/// fields the image specs name (kustomize applies both, so a `tagSuffix` lands twice on those fields).
pub(crate) fn images(resources: &mut [Resource], image: &ImageEntry, specs: &[FieldSpec]) {
    for resource in resources.iter_mut() {
        if resource.kind() == "CustomResourceDefinition" {
            continue;
        }
        rewrite_images(&mut resource.object, image);
        let gvk = Gvk::of(resource);
        for spec in specs {
            if !gvk.selected_by(spec) {
                continue;
            }
            let mut lookup = spec.clone();
            lookup.create = false;
            lookup.visit(&mut resource.object, &mut |field| {
                if let Value::String(current) = field
                    && let Some(updated) = update_image(current, image)
                {
                    *current = updated;
                }
            });
        }
    }
}

fn rewrite_images(value: &mut Value, image: &ImageEntry) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                rewrite_images(child, image);
                if (key == "containers" || key == "initContainers")
                    && let Value::Array(items) = child
                {
                    for item in items.iter_mut() {
                        if let Some(Value::String(current)) = item.get_mut("image")
                            && let Some(updated) = update_image(current, image)
                        {
                            *current = updated;
                        }
                    }
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_images(item, image)),
        _ => {}
    }
}

/// `ValueAddTransformer`: writes `value` at each target's field path (created as needed) of the selected
/// objects, or inserts it as a part of the file path the field holds; `metadata/namespace` runs the namespace
/// transformer's metadata and subject rules instead.
pub(crate) fn value_add(
    resources: &mut [Resource],
    value: &str,
    targets: &[crate::kustomization::ValueAddTarget],
) -> Result<(), String> {
    for target in targets {
        let selector = target
            .selector
            .as_ref()
            .map(crate::patch::Selector::compile)
            .transpose()?;
        let path = crate::fieldspec::split_path(&target.field_path);
        for resource in resources.iter_mut() {
            if selector.as_ref().is_some_and(|s| !s.matches(resource)) {
                continue;
            }
            if path == ["metadata", "namespace"] {
                namespace(
                    std::slice::from_mut(resource),
                    &NamespaceArgs {
                        namespace: value.to_string(),
                        ..NamespaceArgs::default()
                    },
                )?;
                continue;
            }
            let mut current = &mut resource.object;
            for segment in &path {
                current = match current {
                    Value::Object(map) => map
                        .entry(segment.clone())
                        .or_insert_with(|| Value::Object(Map::new())),
                    // A number selects a list item, as in kustomize's path lookups.
                    Value::Array(items) => match segment.parse::<usize>() {
                        Ok(index) if index < items.len() => &mut items[index],
                        _ => {
                            return Err(format!(
                                "ValueAddTransformer: no item '{segment}' in '{}'",
                                target.field_path
                            ));
                        }
                    },
                    _ => {
                        return Err(format!(
                            "ValueAddTransformer: '{}' does not lead to a scalar",
                            target.field_path
                        ));
                    }
                };
            }
            if current.as_object().is_some_and(Map::is_empty) {
                *current = Value::String(String::new());
            }
            let old = match current {
                Value::String(s) => s.clone(),
                Value::Number(n) => crate::yaml::format_number_plain(n),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                _ => {
                    return Err(format!(
                        "ValueAddTransformer: '{}' does not lead to a scalar",
                        target.field_path
                    ));
                }
            };
            let new = if target.file_path_position > 0 {
                insert_path_part(&old, (target.file_path_position - 1) as usize, value)
            } else {
                value.to_string()
            };
            *current = Value::String(new);
        }
    }
    Ok(())
}

/// kustomize's `InsertPathPart`: `part` becomes the `pos`-th part of `path` (an absolute path stays absolute).
fn insert_path_part(path: &str, pos: usize, part: &str) -> String {
    if part.is_empty() {
        return path.to_string();
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let pos = pos.min(parts.len());
    parts.insert(pos, part);
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Splits an image reference into name, tag and digest.
fn split_image(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(colon) => (
            &rest[..slash + colon],
            Some(&rest[slash + colon + 1..]),
            digest,
        ),
        None => (rest, None, digest),
    }
}

fn update_image(current: &str, image: &ImageEntry) -> Option<String> {
    let (name, tag, digest) = split_image(current);
    if name != image.name {
        return None;
    }
    let new_name = image.new_name.as_deref().unwrap_or(name);
    let (tag, digest) = match (&image.new_tag, &image.digest, &image.tag_suffix) {
        (Some(t), Some(d), _) => (Some(t.clone()), Some(d.clone())),
        (Some(t), None, _) => (Some(t.clone()), None),
        (None, Some(d), _) => (None, Some(d.clone())),
        (None, None, Some(suffix)) => (Some(format!("{}{suffix}", tag.unwrap_or_default())), None),
        (None, None, None) => (tag.map(String::from), digest.map(String::from)),
    };
    let mut out = new_name.to_string();
    if let Some(tag) = tag {
        out.push(':');
        out.push_str(&tag);
    }
    if let Some(digest) = digest {
        out.push('@');
        out.push_str(&digest);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        name: &str,
        new_name: Option<&str>,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> ImageEntry {
        ImageEntry {
            name: name.into(),
            new_name: new_name.map(Into::into),
            new_tag: tag.map(Into::into),
            digest: digest.map(Into::into),
            tag_suffix: None,
        }
    }

    #[test]
    fn image_references_are_rewritten() {
        assert_eq!(
            update_image("nginx:1.0", &entry("nginx", None, Some("2"), None)).as_deref(),
            Some("nginx:2")
        );
        assert_eq!(
            update_image("nginx", &entry("nginx", Some("r/nginx"), None, None)).as_deref(),
            Some("r/nginx")
        );
        assert_eq!(
            update_image("nginx-x:1", &entry("nginx", None, Some("2"), None)),
            None
        );
        assert_eq!(
            update_image(
                "reg:5000/app:1@sha256:aa",
                &entry("reg:5000/app", None, Some("2"), None)
            )
            .as_deref(),
            Some("reg:5000/app:2")
        );
        assert_eq!(
            update_image("app:1", &entry("app", None, Some("2"), Some("sha256:bb"))).as_deref(),
            Some("app:2@sha256:bb")
        );
    }
}
