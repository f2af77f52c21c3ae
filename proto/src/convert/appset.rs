//! Application sets between protocol v1 and `edgecd_core::appset`: generators field by field, the template's spec through the domain `ApplicationSpec`.

use edgecd_core::app::ApplicationSpec;
use edgecd_core::appset::{
    AppSetSyncPolicy, AppTemplate, ApplicationSetSpec, ApplicationsSyncPolicy, ClustersGenerator,
    Generator, GeneratorKind, GitDirectoryItem, GitFileItem, GitGenerator, ListGenerator,
    MatrixGenerator, MergeGenerator, TemplateMeta,
};

use super::{
    ConvertError, application_spec, from_application_spec, from_label_selector, invalid,
    label_selector, labels,
};
use crate::v1;

/// The protocol form of a set's spec; `project`, `name` and `scope` come from the caller, status fields are left empty.
///
/// Fails if a placeholder sits in a template field that is not a string in
/// the protocol (e.g. `revisionHistoryLimit: '{{n}}'`).
pub fn appset_spec_to_proto(
    project: &str,
    name: &str,
    scope: &str,
    spec: &ApplicationSetSpec,
) -> Result<v1::ApplicationSet, ConvertError> {
    let template_spec: ApplicationSpec = serde_json::from_value(spec.template.spec.clone())
        .map_err(|e| invalid("template.spec", e.to_string()))?;
    let policy = spec.sync_policy.as_ref();
    Ok(v1::ApplicationSet {
        project: project.to_owned(),
        name: name.to_owned(),
        generators: spec
            .generators
            .iter()
            .map(generator)
            .collect::<Result<_, _>>()?,
        template: Some(v1::ApplicationTemplate {
            name: spec.template.metadata.name.clone(),
            project: template_spec.project.clone(),
            labels: labels(&spec.template.metadata.labels),
            annotations: labels(&spec.template.metadata.annotations),
            spec: Some(application_spec(&template_spec)),
        }),
        policy: match policy.and_then(|p| p.applications_sync) {
            None => v1::ApplicationSetPolicy::Unspecified,
            Some(ApplicationsSyncPolicy::Sync) => v1::ApplicationSetPolicy::Sync,
            Some(ApplicationsSyncPolicy::CreateOnly) => v1::ApplicationSetPolicy::CreateOnly,
            Some(ApplicationsSyncPolicy::CreateUpdate) => v1::ApplicationSetPolicy::CreateUpdate,
            Some(ApplicationsSyncPolicy::CreateDelete) => v1::ApplicationSetPolicy::CreateDelete,
        } as i32,
        preserve_resources_on_deletion: policy.is_some_and(|p| p.preserve_resources_on_deletion),
        go_template: spec.go_template,
        scope: scope.to_owned(),
        spec_json: serde_json::to_string(spec).map_err(|e| invalid("spec", e.to_string()))?,
        ..v1::ApplicationSet::default()
    })
}

fn generator(g: &Generator) -> Result<v1::ApplicationSetGenerator, ConvertError> {
    use v1::application_set_generator::Generator as G;
    let inner = match &g.kind {
        GeneratorKind::List(list) => G::List(v1::ListGenerator {
            elements_json: list
                .elements
                .iter()
                .map(|e| {
                    serde_json::to_string(e).map_err(|e| invalid("list.elements", e.to_string()))
                })
                .collect::<Result<_, _>>()?,
        }),
        GeneratorKind::Clusters(c) => G::Clusters(v1::ClustersGenerator {
            selector: (!c.selector.is_empty()).then(|| label_selector(&c.selector)),
            values: labels(&c.values),
        }),
        GeneratorKind::Git(git) => G::Git(v1::GitGenerator {
            repo_url: git.repo_url.clone(),
            revision: git.revision.clone(),
            directories: git
                .directories
                .iter()
                .map(|d| v1::GitDirectory {
                    path: d.path.clone(),
                    exclude: d.exclude,
                })
                .collect(),
            files: git
                .files
                .iter()
                .map(|f| v1::GitFile {
                    path: f.path.clone(),
                    exclude: f.exclude,
                })
                .collect(),
            path_param_prefix: git.path_param_prefix.clone(),
            values: labels(&git.values),
        }),
        GeneratorKind::Matrix(m) => G::Matrix(v1::MatrixGenerator {
            generators: m
                .generators
                .iter()
                .map(generator)
                .collect::<Result<_, _>>()?,
        }),
        GeneratorKind::Merge(m) => G::Merge(v1::MergeGenerator {
            merge_keys: m.merge_keys.clone(),
            generators: m
                .generators
                .iter()
                .map(generator)
                .collect::<Result<_, _>>()?,
        }),
        // No typed form: the set's `spec_json` (always sent) carries it (`needs_full_spec`).
        GeneratorKind::ClusterDecisionResource(_) => {
            return Ok(v1::ApplicationSetGenerator { generator: None });
        }
    };
    Ok(v1::ApplicationSetGenerator {
        generator: Some(inner),
    })
}

/// The domain spec of a protocol set, checked as strictly as Argo YAML is (`ApplicationSetSpec::from_json`):
/// from `spec_json` when the set carries it, else from the typed fields.
pub fn appset_spec_from_proto(
    set: &v1::ApplicationSet,
) -> Result<ApplicationSetSpec, ConvertError> {
    if !set.spec_json.is_empty() {
        let json: serde_json::Value = serde_json::from_str(&set.spec_json)
            .map_err(|e| invalid("spec_json", format!("is not JSON: {e}")))?;
        return ApplicationSetSpec::from_json(&json).map_err(|e| ConvertError {
            field: e.path,
            reason: e.message,
        });
    }
    let template = set
        .template
        .as_ref()
        .ok_or_else(|| invalid("template", "is required"))?;
    let spec = template
        .spec
        .as_ref()
        .ok_or_else(|| invalid("template.spec", "is required"))?;
    let mut template_spec = from_application_spec(spec, &template.project).map_err(|e| {
        invalid(
            &format!("template.spec.{}", e.field.trim_start_matches("spec.")),
            e.reason,
        )
    })?;
    template_spec.project = template.project.clone();
    let applications_sync = match v1::ApplicationSetPolicy::try_from(set.policy) {
        Ok(v1::ApplicationSetPolicy::Unspecified) => None,
        Ok(v1::ApplicationSetPolicy::Sync) => Some(ApplicationsSyncPolicy::Sync),
        Ok(v1::ApplicationSetPolicy::CreateOnly) => Some(ApplicationsSyncPolicy::CreateOnly),
        Ok(v1::ApplicationSetPolicy::CreateUpdate) => Some(ApplicationsSyncPolicy::CreateUpdate),
        Ok(v1::ApplicationSetPolicy::CreateDelete) => Some(ApplicationsSyncPolicy::CreateDelete),
        Err(_) => return Err(invalid("policy", format!("unknown value {}", set.policy))),
    };
    let sync_policy = (applications_sync.is_some() || set.preserve_resources_on_deletion)
        .then_some(AppSetSyncPolicy {
            preserve_resources_on_deletion: set.preserve_resources_on_deletion,
            applications_sync,
        });
    let spec = ApplicationSetSpec {
        generators: set
            .generators
            .iter()
            .enumerate()
            .map(|(i, g)| from_generator(g, &format!("generators[{i}]")))
            .collect::<Result<_, _>>()?,
        template: AppTemplate {
            metadata: TemplateMeta {
                name: template.name.clone(),
                labels: super::from_labels(&template.labels),
                annotations: super::from_labels(&template.annotations),
                finalizers: Vec::new(),
            },
            spec: serde_json::to_value(&template_spec)
                .map_err(|e| invalid("template.spec", e.to_string()))?,
        },
        go_template: set.go_template,
        sync_policy,
        go_template_options: Vec::new(),
        template_patch: None,
        preserved_fields: None,
        ignore_application_differences: Vec::new(),
        strategy: None,
    };
    // The same strict checks as Argo YAML gets (goTemplate refused, template spec fields).
    let json = serde_json::to_value(&spec).map_err(|e| invalid("spec", e.to_string()))?;
    ApplicationSetSpec::from_json(&json).map_err(|e| ConvertError {
        field: e.path,
        reason: e.message,
    })
}

fn from_generator(g: &v1::ApplicationSetGenerator, at: &str) -> Result<Generator, ConvertError> {
    use v1::application_set_generator::Generator as G;
    let inner = g
        .generator
        .as_ref()
        .ok_or_else(|| invalid(at, "names no generator"))?;
    let children = |gs: &[v1::ApplicationSetGenerator], kind: &str| {
        gs.iter()
            .enumerate()
            .map(|(i, g)| from_generator(g, &format!("{at}.{kind}.generators[{i}]")))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match inner {
        G::List(list) => GeneratorKind::List(ListGenerator {
            elements: list
                .elements_json
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    serde_json::from_str(e).map_err(|err| {
                        invalid(
                            &format!("{at}.list.elements[{i}]"),
                            format!("is not a JSON object: {err}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            ..ListGenerator::default()
        }),
        G::Clusters(c) => GeneratorKind::Clusters(ClustersGenerator {
            selector: c
                .selector
                .as_ref()
                .map(from_label_selector)
                .transpose()
                .map_err(|e| invalid(&format!("{at}.clusters.selector"), e.reason))?
                .unwrap_or_default(),
            values: super::from_labels(&c.values),
            ..ClustersGenerator::default()
        }),
        G::Git(git) => GeneratorKind::Git(GitGenerator {
            repo_url: git.repo_url.clone(),
            revision: git.revision.clone(),
            directories: git
                .directories
                .iter()
                .map(|d| GitDirectoryItem {
                    path: d.path.clone(),
                    exclude: d.exclude,
                })
                .collect(),
            files: git
                .files
                .iter()
                .map(|f| GitFileItem {
                    path: f.path.clone(),
                    exclude: f.exclude,
                })
                .collect(),
            path_param_prefix: git.path_param_prefix.clone(),
            values: super::from_labels(&git.values),
            ..GitGenerator::default()
        }),
        G::Matrix(m) => GeneratorKind::Matrix(MatrixGenerator {
            generators: children(&m.generators, "matrix")?,
            template: None,
        }),
        G::Merge(m) => GeneratorKind::Merge(MergeGenerator {
            merge_keys: m.merge_keys.clone(),
            generators: children(&m.generators, "merge")?,
            template: None,
        }),
    }
    .into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The talk's two sets survive a round trip through the protocol unchanged.
    #[test]
    fn talk_sets_round_trip() {
        for yaml_json in [
            serde_json::json!({
                "generators": [{"clusters": {}}],
                "template": {
                    "metadata": {"name": "{{name}}.nginx"},
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": "https://git.example/repo", "targetRevision": "HEAD", "path": "deploy/overlays/{{name}}"},
                        "destination": {"server": "{{server}}", "namespace": "nginx"}
                    }
                }
            }),
            serde_json::json!({
                "generators": [{"git": {"repoURL": "https://git.example/repo", "revision": "HEAD",
                    "directories": [{"path": "deploy/clusters/cluster-3/*"}, {"path": "deploy/clusters/cluster-3/x", "exclude": true}]}},
                    {"list": {"elements": [{"cluster": "a", "url": "https://a"}]}},
                    {"matrix": {"generators": [{"clusters": {"selector": {"matchLabels": {"env": "edge"}}, "values": {"k": "v"}}},
                        {"list": {"elements": [{"x": "1"}]}}]}}],
                "template": {
                    "metadata": {"name": "{{path.basename}}", "labels": {"team": "cdn"}},
                    "spec": {
                        "source": {"repoURL": "https://git.example/repo", "targetRevision": "HEAD", "path": "{{path}}"},
                        "destination": {"server": "https://kubernetes.default.svc"}
                    }
                },
                "syncPolicy": {"preserveResourcesOnDeletion": true, "applicationsSync": "create-update"}
            }),
        ] {
            let spec = ApplicationSetSpec::from_json(&yaml_json).unwrap();
            let proto = appset_spec_to_proto("default", "set", "hub", &spec).unwrap();
            let back = appset_spec_from_proto(&proto).unwrap();
            assert_eq!(back.generators, spec.generators);
            assert_eq!(back.template.metadata, spec.template.metadata);
            assert_eq!(back.sync_policy, spec.sync_policy);
            let a: ApplicationSpec = serde_json::from_value(back.template.spec).unwrap();
            let b: ApplicationSpec = serde_json::from_value(spec.template.spec).unwrap();
            assert_eq!(a, b);
        }
    }

    /// What the typed fields cannot say travels in `spec_json`, and the receiving side reads it from there.
    #[test]
    fn go_template_sets_travel_as_their_json_spec() {
        let spec = ApplicationSetSpec::from_json(&serde_json::json!({
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{
                "list": {"elements": [{"cluster": "a", "n": 3}], "template": {"metadata": {}, "spec": {"project": "edge"}}},
                "selector": {"matchLabels": {"cluster": "a"}}
            }],
            "templatePatch": "spec:\n  syncPolicy:\n    automated: {}\n",
            "preservedFields": {"annotations": ["note"]},
            "template": {"metadata": {"name": "{{ .cluster }}-web"}, "spec": {"source": {"repoURL": "r"}, "destination": {"name": "{{ .cluster }}"}}}
        }))
        .unwrap();
        assert!(spec.needs_full_spec());
        let proto = appset_spec_to_proto("default", "set", "hub", &spec).unwrap();
        assert!(proto.go_template);
        assert_eq!(appset_spec_from_proto(&proto).unwrap(), spec);
        // Without the JSON, the typed summary alone loses the selector, the patch and the options.
        let mut typed = proto.clone();
        typed.spec_json.clear();
        let summary = appset_spec_from_proto(&typed).unwrap();
        assert!(summary.go_template);
        assert_ne!(summary, spec);
        // Hostile JSON is refused naming the field.
        let mut broken = proto;
        broken.spec_json = "{not json".into();
        assert_eq!(
            appset_spec_from_proto(&broken).unwrap_err().field,
            "spec_json"
        );
    }
}
