//! Built-in transformers: namespace, name prefix/suffix, labels, annotations, replicas and images.

use serde_json::{Map, Value};

use crate::fieldspec::FieldSpec;
use crate::kustomization::ImageEntry;
use crate::resource::{Resource, ns_eq, str_at, visit_path};
use crate::schema;

/// Kinds whose pod template sits at `spec/template`.
const TEMPLATE_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "ReplicationController",
];

/// Returns true when the object is cluster-scoped (kinds unknown to the schema are namespaced).
pub(crate) fn is_cluster_scoped(resource: &Resource) -> bool {
    let id = resource.id();
    schema::is_namespaced(&id.group, &id.version, &id.kind) == Some(false)
}

/// `namespace:` sets the namespace of namespaced objects and of references that must follow it.
pub(crate) fn namespace(resources: &mut [Resource], namespace: &str, extra: &[FieldSpec]) {
    // Service accounts in the build, by name and namespace before this transformer.
    let service_accounts: Vec<(String, String)> = resources
        .iter()
        .filter(|r| r.kind() == "ServiceAccount")
        .map(|r| (r.name().to_string(), r.namespace().to_string()))
        .collect();
    for resource in resources.iter_mut() {
        // Field specs from `configurations:` files.
        let matching: Vec<&FieldSpec> = extra.iter().filter(|s| s.matches(resource)).collect();
        for spec in matching {
            if spec.path == ["metadata", "namespace"] {
                continue;
            }
            spec.visit(&mut resource.object, &mut |field| {
                if field.is_null() || field.is_string() {
                    *field = Value::String(namespace.into());
                }
            });
        }
        let kind = resource.kind().to_string();
        if kind == "Namespace" && resource.group().is_empty() {
            resource.set_name(namespace.to_string());
            continue;
        }
        if !is_cluster_scoped(resource) {
            resource.set_namespace(namespace);
        }
        match kind.as_str() {
            "RoleBinding" | "ClusterRoleBinding" => {
                visit_path(&mut resource.object, "subjects[]", false, &mut |subject| {
                    if str_at(subject, &["kind"]) != Some("ServiceAccount") {
                        return;
                    }
                    let name = str_at(subject, &["name"]).unwrap_or_default();
                    let ns = str_at(subject, &["namespace"]).unwrap_or_default();
                    let in_build = service_accounts
                        .iter()
                        .any(|(n, sns)| n == name && ns_eq(sns, ns));
                    if (name == "default" || in_build)
                        && let Value::Object(map) = subject
                    {
                        map.insert("namespace".into(), Value::String(namespace.into()));
                    }
                });
            }
            "APIService" => {
                set_existing(&mut resource.object, "spec/service", "namespace", namespace)
            }
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
                set_existing(
                    &mut resource.object,
                    "webhooks[]/clientConfig/service",
                    "namespace",
                    namespace,
                );
            }
            "CustomResourceDefinition" => {
                set_existing(
                    &mut resource.object,
                    "spec/conversion/webhook/clientConfig/service",
                    "namespace",
                    namespace,
                );
            }
            _ => {}
        }
    }
}

/// Sets `field` in every map found at `path` (without creating the path).
fn set_existing(object: &mut Value, path: &str, field: &str, value: &str) {
    visit_path(object, path, false, &mut |target| {
        if let Value::Object(map) = target {
            map.insert(field.into(), Value::String(value.into()));
        }
    });
}

/// `namePrefix`/`nameSuffix`.
pub(crate) fn prefix_suffix(resources: &mut [Resource], prefix: &str, suffix: &str) {
    for resource in resources.iter_mut() {
        if matches!(
            resource.kind(),
            "CustomResourceDefinition" | "APIService" | "Namespace"
        ) {
            continue;
        }
        let name = format!("{prefix}{}{suffix}", resource.name());
        resource.set_name(name);
        if !prefix.is_empty() {
            resource.prefixes.push(prefix.to_string());
        }
        if !suffix.is_empty() {
            resource.suffixes.push(suffix.to_string());
        }
    }
}

/// Adds labels to metadata, and to selectors and templates where kustomize puts them.
pub(crate) fn labels(
    resources: &mut [Resource],
    pairs: &[(String, String)],
    selectors: bool,
    templates: bool,
    extra: &[FieldSpec],
) {
    for resource in resources.iter_mut() {
        let matching: Vec<&FieldSpec> = extra.iter().filter(|s| s.matches(resource)).collect();
        for spec in matching {
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
        let kind = resource.kind().to_string();
        let known = !resource.group().is_empty()
            || schema::is_namespaced("", "v1", &kind).is_some()
            || is_builtin(resource);
        let mut paths: Vec<(String, bool)> = vec![("metadata/labels".into(), true)];
        let mut add = |path: &str, create: bool| paths.push((path.to_string(), create));
        if known && selectors {
            match kind.as_str() {
                "Service" => add("spec/selector", true),
                "ReplicationController" => add("spec/selector", true),
                "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" => {
                    add("spec/selector/matchLabels", true);
                }
                "Job" => add("spec/selector/matchLabels", false),
                "CronJob" => add("spec/jobTemplate/spec/selector/matchLabels", false),
                "PodDisruptionBudget" => add("spec/selector/matchLabels", false),
                "NetworkPolicy" => {
                    add("spec/podSelector/matchLabels", false);
                    add("spec/ingress[]/from[]/podSelector/matchLabels", false);
                    add("spec/egress[]/to[]/podSelector/matchLabels", false);
                }
                _ => {}
            }
            if TEMPLATE_KINDS.contains(&kind.as_str()) {
                for affinity in ["podAffinity", "podAntiAffinity"] {
                    for term in [
                        "preferredDuringSchedulingIgnoredDuringExecution[]/podAffinityTerm",
                        "requiredDuringSchedulingIgnoredDuringExecution[]",
                    ] {
                        add(
                            &format!(
                                "spec/template/spec/affinity/{affinity}/{term}/labelSelector/matchLabels"
                            ),
                            false,
                        );
                    }
                }
                add(
                    "spec/template/spec/topologySpreadConstraints[]/labelSelector/matchLabels",
                    false,
                );
            }
        }
        if known && templates {
            if TEMPLATE_KINDS.contains(&kind.as_str()) {
                add("spec/template/metadata/labels", true);
            }
            if kind == "CronJob" {
                add("spec/jobTemplate/metadata/labels", true);
                add("spec/jobTemplate/spec/template/metadata/labels", true);
            }
            if kind == "StatefulSet" && selectors {
                add("spec/volumeClaimTemplates[]/metadata/labels", true);
            }
        }
        for (path, create) in paths {
            add_pairs(&mut resource.object, &path, create, pairs);
        }
    }
}

/// Adds `pairs` to the map at every field spec's path (a LabelTransformer or AnnotationsTransformer).
pub(crate) fn set_pairs(
    resources: &mut [Resource],
    pairs: &[(String, String)],
    specs: &[FieldSpec],
) {
    for resource in resources.iter_mut() {
        let matching: Vec<&FieldSpec> = specs.iter().filter(|s| s.matches(resource)).collect();
        for spec in matching {
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

fn is_builtin(resource: &Resource) -> bool {
    let id = resource.id();
    schema::is_namespaced(&id.group, &id.version, &id.kind).is_some()
}

/// `commonAnnotations`: metadata and pod templates.
pub(crate) fn annotations(resources: &mut [Resource], pairs: &[(String, String)]) {
    for resource in resources.iter_mut() {
        let kind = resource.kind().to_string();
        let builtin = is_builtin(resource);
        add_pairs(&mut resource.object, "metadata/annotations", true, pairs);
        if builtin && TEMPLATE_KINDS.contains(&kind.as_str()) {
            add_pairs(
                &mut resource.object,
                "spec/template/metadata/annotations",
                true,
                pairs,
            );
        }
        if builtin && kind == "CronJob" {
            add_pairs(
                &mut resource.object,
                "spec/jobTemplate/metadata/annotations",
                true,
                pairs,
            );
            add_pairs(
                &mut resource.object,
                "spec/jobTemplate/spec/template/metadata/annotations",
                true,
                pairs,
            );
        }
    }
}

fn add_pairs(object: &mut Value, path: &str, create: bool, pairs: &[(String, String)]) {
    visit_path(object, path, create, &mut |target| {
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

/// `replicas:` sets `spec.replicas` of the named workload; an entry matching nothing is an error.
pub(crate) fn replicas(
    resources: &mut [Resource],
    name: &str,
    count: &Value,
) -> Result<(), String> {
    let mut matched = false;
    for resource in resources.iter_mut() {
        if !matches!(
            resource.kind(),
            "Deployment" | "ReplicationController" | "ReplicaSet" | "StatefulSet"
        ) {
            continue;
        }
        if resource.name() != name && resource.original.name != name {
            continue;
        }
        matched = true;
        visit_path(&mut resource.object, "spec/replicas", true, &mut |target| {
            *target = count.clone()
        });
    }
    if !matched {
        return Err(format!(
            "resource with name {name} does not match a config with the following GVK [apps_v1_Deployment ~G_v1_ReplicationController apps_v1_ReplicaSet apps_v1_StatefulSet]"
        ));
    }
    Ok(())
}

/// `images:` rewrites matching image references in every `containers`/`initContainers` list.
pub(crate) fn images(resources: &mut [Resource], image: &ImageEntry) {
    for resource in resources.iter_mut() {
        if resource.kind() == "CustomResourceDefinition" {
            continue;
        }
        rewrite_images(&mut resource.object, image);
    }
}

fn rewrite_images(value: &mut Value, image: &ImageEntry) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
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
                rewrite_images(child, image);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_images(item, image)),
        _ => {}
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
        (None, None, Some(suffix)) => (
            Some(format!("{}{suffix}", tag.unwrap_or_default())),
            digest.map(String::from),
        ),
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
