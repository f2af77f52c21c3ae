//! Argo CD import: maps `Application`, `ApplicationSet` and `AppProject` documents (JSON values) onto edgecd's types, refusing every field edgecd does not support by name.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::app::ApplicationSpec;
use crate::appset::ApplicationSetSpec;
use crate::argo_spec::{
    as_array, as_object, check_application_spec_warned, check_keys, check_list_of_objects, fail,
    is_empty_value, normalize_application_spec,
};
use crate::names::{AppName, ProjectName};
use crate::project::{
    GroupKind, IN_CLUSTER_SERVER, OrphanedResources, ProjectDestination, ProjectRole, ProjectSpec,
    RoleBinding,
};
use crate::selector::LabelSelector;

/// One imported document.
// Documents are transient import results; boxing would only complicate matching.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Application(ImportedApp),
    ApplicationSet(ImportedAppSet),
    Project(ImportedProject),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedApp {
    pub name: String,
    /// Empty becomes `default`.
    pub project: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `destination.server` / `destination.name` are left as given.
    pub spec: ApplicationSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportedAppSet {
    pub name: String,
    /// The template's literal `spec.project` when it holds no placeholder, else `default`.
    pub project: String,
    pub spec: ApplicationSetSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedProject {
    pub name: String,
    pub spec: ProjectSpec,
    /// Destinations given by server URL other than `in-cluster`'s: (index into `spec.destinations`, url). They
    /// stay URLs in `spec.destinations[index].clusters` (matching any cluster reporting that server URL, now or
    /// later); this list lets the caller say which enrolled clusters match today.
    pub destination_servers: Vec<(usize, String)>,
}

/// Why a document was refused: `source` names it (`argoproj.io/v1alpha1 Application demo`), `field` the offending field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub source: String,
    pub field: String,
    pub message: String,
}

// Written by hand: thiserror would take a field named `source` for the error's cause.
impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.field, self.message)
    }
}

impl std::error::Error for ImportError {}

const API_VERSIONS: &[&str] = &["argoproj.io/v1alpha1", "edgecd.io/v1alpha1"];

const ARGO_FINALIZERS: &[&str] = &[
    "resources-finalizer.argocd.argoproj.io",
    "resources-finalizer.argocd.argoproj.io/background",
    "resources-finalizer.argocd.argoproj.io/foreground",
];

struct Meta {
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn string_map(v: Option<&Value>, path: &str) -> Result<BTreeMap<String, String>, (String, String)> {
    let mut out = BTreeMap::new();
    if let Some(v) = v {
        if v.is_null() {
            return Ok(out);
        }
        for (k, val) in as_object(v, path)? {
            let s = val
                .as_str()
                .ok_or_else(|| fail(&format!("{path}.{k}"), "expected a string"))?;
            out.insert(k.clone(), s.to_owned());
        }
    }
    Ok(out)
}

fn parse_meta(meta: &Value, warnings: &mut Vec<String>) -> Result<Meta, (String, String)> {
    let obj = as_object(meta, "metadata")?;
    check_keys(
        obj,
        "metadata",
        &[
            "name",
            "namespace",
            "labels",
            "annotations",
            "finalizers",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
        ],
        &[],
    )?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("metadata.name", "required"))?
        .to_owned();
    if let Some(f) = obj.get("finalizers").filter(|f| !f.is_null()) {
        for (i, item) in as_array(f, "metadata.finalizers")?.iter().enumerate() {
            let at = format!("metadata.finalizers[{i}]");
            let s = item
                .as_str()
                .ok_or_else(|| fail(&at, "expected a string"))?;
            if !ARGO_FINALIZERS.contains(&s) {
                return Err(fail(&at, format!("finalizer {s:?} is not supported")));
            }
            warnings.push(format!(
                "{at}: {s} accepted and ignored (edgecd deletes an app's resources with it unless the app carries the label edgecd.io/preserve-resources-on-deletion)"
            ));
        }
    }
    Ok(Meta {
        name,
        labels: string_map(obj.get("labels"), "metadata.labels")?,
        annotations: string_map(obj.get("annotations"), "metadata.annotations")?,
    })
}

fn project_or_default(project: &str) -> Result<String, (String, String)> {
    if project.is_empty() {
        return Ok("default".to_owned());
    }
    ProjectName::parse(project)
        .map(|p| p.to_string())
        .map_err(|e| fail("spec.project", e.to_string()))
}

/// Maps one Argo CD (or edgecd) document onto edgecd's types.
pub fn parse_document(doc: &Value) -> Result<Document, ImportError> {
    parse_document_warned(doc).map(|(document, _)| document)
}

/// [`parse_document`], with the warnings about what was accepted but is not acted on (`field: why`):
/// fields only Argo CD's own controller uses, options edgecd ignores, sync windows not enforced yet.
pub fn parse_document_warned(doc: &Value) -> Result<(Document, Vec<String>), ImportError> {
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let source = format!("{api_version} {kind} {name}");
    let wrap = |(field, message): (String, String)| ImportError {
        source: source.clone(),
        field,
        message,
    };
    let mut warnings = Vec::new();
    let document = parse_inner(doc, api_version, kind, &mut warnings).map_err(wrap)?;
    Ok((document, warnings))
}

fn parse_inner(
    doc: &Value,
    api_version: &str,
    kind: &str,
    warnings: &mut Vec<String>,
) -> Result<Document, (String, String)> {
    let obj = as_object(doc, "")
        .map_err(|_| fail("<document>", "expected a Kubernetes object (a mapping)"))?;
    if !API_VERSIONS.contains(&api_version) {
        return Err(fail(
            "apiVersion",
            format!("expected one of {}", API_VERSIONS.join(", ")),
        ));
    }
    check_keys(
        obj,
        "",
        &[
            "apiVersion",
            "kind",
            "metadata",
            "spec",
            "status",
            "operation",
        ],
        &[],
    )?;
    if obj.get("operation").is_some_and(|v| !is_empty_value(v)) {
        warnings.push(
            "operation: accepted and ignored (a pending Argo CD operation is not run; use edgecd app sync)"
                .into(),
        );
    }
    if obj.get("status").is_some_and(|v| !is_empty_value(v)) {
        warnings.push("status: accepted and ignored (the spoke reports the status)".into());
    }
    let meta = parse_meta(
        obj.get("metadata")
            .ok_or_else(|| fail("metadata", "required"))?,
        warnings,
    )?;
    let spec = obj.get("spec").ok_or_else(|| fail("spec", "required"))?;
    match kind {
        "Application" => {
            AppName::parse(meta.name.as_str()).map_err(|e| fail("metadata.name", e.to_string()))?;
            check_application_spec_warned(spec, "spec", warnings)?;
            let mut spec = spec.clone();
            normalize_application_spec(&mut spec);
            let spec: ApplicationSpec =
                serde_json::from_value(spec).map_err(|e| fail("spec", e.to_string()))?;
            // What a spoke could not use (a path leaving the repository, an invalid namespace or
            // label, a URL of another scheme) is refused here, not at the spoke.
            spec.validate().map_err(|e| (e.field, e.message))?;
            crate::app::validate_labels(&meta.labels, "metadata.labels")
                .map_err(|e| (e.field, e.message))?;
            let project = project_or_default(&spec.project)?;
            Ok(Document::Application(ImportedApp {
                name: meta.name,
                project,
                labels: meta.labels,
                annotations: meta.annotations,
                spec,
            }))
        }
        "ApplicationSet" => {
            AppName::parse(meta.name.as_str()).map_err(|e| fail("metadata.name", e.to_string()))?;
            let spec = ApplicationSetSpec::from_json(spec).map_err(|e| (e.path, e.message))?;
            let literal = spec
                .template
                .spec
                .get("project")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let project = if literal.contains("{{") {
                "default".to_owned()
            } else {
                project_or_default(literal)
                    .map_err(|(_, m)| fail("spec.template.spec.project", m))?
            };
            if spec.rolling_steps().is_some()
                && spec
                    .template
                    .spec
                    .pointer("/syncPolicy/automated")
                    .is_some_and(|a| !a.is_null())
            {
                warnings.push(
                    "spec.template.spec.syncPolicy.automated: turned off on the generated applications, as Argo CD does: the RollingSync strategy syncs each in its step's turn (with prune if the template asks it)"
                        .into(),
                );
            }
            Ok(Document::ApplicationSet(ImportedAppSet {
                name: meta.name,
                project,
                spec,
            }))
        }
        "AppProject" | "Project" => {
            ProjectName::parse(meta.name.as_str())
                .map_err(|e| fail("metadata.name", e.to_string()))?;
            let (spec, destination_servers) = parse_project_spec(
                &meta.name,
                spec,
                api_version == "edgecd.io/v1alpha1",
                warnings,
            )?;
            Ok(Document::Project(ImportedProject {
                name: meta.name,
                spec,
                destination_servers,
            }))
        }
        _ => Err(fail(
            "kind",
            "expected Application, ApplicationSet or AppProject",
        )),
    }
}

fn group_kinds(v: Option<&Value>, path: &str) -> Result<Vec<GroupKind>, (String, String)> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    check_list_of_objects(v, path, |o, at| {
        check_keys(o, at, &["group", "kind", "name"], &[])
    })?;
    serde_json::from_value(v.clone()).map_err(|e| fail(path, e.to_string()))
}

type ProjectParts = (ProjectSpec, Vec<(usize, String)>);

/// Argo CD application actions and the edgecd role that allows them (a role covers those of the roles below).
fn role_for_action(action: &str) -> Option<ProjectRole> {
    match action {
        "get" => Some(ProjectRole::Viewer),
        "sync" | "action/*" => Some(ProjectRole::Deployer),
        "create" | "update" | "delete" | "override" | "*" => Some(ProjectRole::Owner),
        _ if action.starts_with("action/") => Some(ProjectRole::Deployer),
        _ if action.starts_with("update/") || action.starts_with("delete/") => {
            Some(ProjectRole::Owner)
        }
        _ => None,
    }
}

/// Maps one Argo CD project role (`name`, `policies` as casbin lines, `groups`, `jwtTokens`) onto an edgecd
/// role binding: the role is the strongest one its policies need. A policy edgecd cannot express (a deny, an
/// object narrower than the whole project, another resource) refuses the role, naming the line.
fn argo_role(
    project: &str,
    role: &serde_json::Map<String, Value>,
    at: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<RoleBinding>, (String, String)> {
    check_keys(
        role,
        at,
        &["name", "description", "policies", "groups", "jwtTokens"],
        &[],
    )?;
    let name = role.get("name").and_then(Value::as_str).unwrap_or_default();
    if role.get("jwtTokens").is_some_and(|v| !is_empty_value(v)) {
        warnings.push(format!(
            "{at}.jwtTokens: accepted and ignored (edgecd issues its own project-scoped API tokens: edgecd account token create)"
        ));
    }
    let groups: Vec<String> = match role.get("groups").filter(|v| !v.is_null()) {
        Some(g) => serde_json::from_value(g.clone())
            .map_err(|e| fail(&format!("{at}.groups"), e.to_string()))?,
        None => Vec::new(),
    };
    if groups.is_empty() {
        // Argo CD gives such a role to its JWT tokens only; edgecd's API tokens replace those, so the role
        // grants nothing here whatever its policies say (an app-scoped CI role is the usual case).
        warnings.push(format!(
            "{at}: role {name:?} has no groups (Argo CD gives it to JWT tokens only); not imported, its policies not used (create an edgecd API token for the project instead: edgecd account token create)"
        ));
        return Ok(None);
    }
    let mut strongest: Option<ProjectRole> = None;
    let policies = match role.get("policies").filter(|v| !v.is_null()) {
        Some(p) => as_array(p, &format!("{at}.policies"))?.clone(),
        None => Vec::new(),
    };
    for (i, line) in policies.iter().enumerate() {
        let lp = format!("{at}.policies[{i}]");
        let text = line
            .as_str()
            .ok_or_else(|| fail(&lp, "expected a string"))?;
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let why = |m: &str| fail(&lp, format!("{text:?}: {m}"));
        let [p, subject, resource, action, object, effect] = parts.as_slice() else {
            return Err(why(
                "expected 'p, proj:PROJECT:ROLE, RESOURCE, ACTION, OBJECT, allow|deny'",
            ));
        };
        if *p != "p" {
            return Err(why("only 'p' policy lines are understood"));
        }
        if *subject != format!("proj:{project}:{name}") {
            return Err(why(&format!(
                "the subject must be proj:{project}:{name}, this role"
            )));
        }
        if *effect != "allow" {
            return Err(why(
                "deny policies cannot be expressed: edgecd roles only grant",
            ));
        }
        match *resource {
            "applications" | "applicationsets" => {}
            "logs" | "exec" => {
                warnings.push(format!(
                    "{lp}: {resource} is not an edgecd permission (the spoke exposes no pod {resource}); ignored"
                ));
                continue;
            }
            other => {
                return Err(why(&format!(
                    "resource {other} cannot be granted by a project role in edgecd (only applications and applicationsets)"
                )));
            }
        }
        let whole = [format!("{project}/*"), "*".to_owned(), "*/*".to_owned()];
        if !whole.iter().any(|w| w == object) {
            return Err(why(&format!(
                "object {object} is narrower than the project: edgecd roles apply to every app of project {project} ({project}/*)"
            )));
        }
        let needed =
            role_for_action(action).ok_or_else(|| why(&format!("unknown action {action}")))?;
        if needed == ProjectRole::Owner {
            warnings.push(format!(
                "{lp}: mapped to edgecd's Owner role, which also lets the role edit project {project} itself"
            ));
        }
        strongest = strongest.max(Some(needed));
    }
    match strongest {
        None => {
            warnings.push(format!("{at}: role {name:?} grants nothing; not imported"));
            Ok(None)
        }
        Some(role) => Ok(Some(RoleBinding {
            role,
            users: Vec::new(),
            groups,
        })),
    }
}

fn parse_project_spec(
    project: &str,
    spec: &Value,
    edgecd: bool,
    warnings: &mut Vec<String>,
) -> Result<ProjectParts, (String, String)> {
    let obj = as_object(spec, "spec")?;
    check_keys(
        obj,
        "spec",
        &[
            "description",
            "sourceRepos",
            "destinations",
            "clusterResourceWhitelist",
            "clusterResourceBlacklist",
            "namespaceResourceBlacklist",
            "namespaceResourceWhitelist",
            "orphanedResources",
            "roles",
            "syncWindows",
            "sourceNamespaces",
            "permitOnlyProjectScopedClusters",
        ],
        &[
            (
                "signatureKeys",
                "GnuPG signature verification is not supported: edgecd would deploy commits it cannot verify",
            ),
            (
                "sourceIntegrity",
                "source integrity (GnuPG) verification is not supported: edgecd would deploy commits it cannot verify",
            ),
            (
                "destinationServiceAccounts",
                "impersonation is not supported: the spoke applies with its own service account, wider than the one named here",
            ),
        ],
    )?;
    if obj
        .get("permitOnlyProjectScopedClusters")
        .is_some_and(|v| !is_empty_value(v))
    {
        return Err(fail(
            "spec.permitOnlyProjectScopedClusters",
            "project-scoped clusters are not supported: every edgecd cluster is enrolled fleet-wide",
        ));
    }
    if obj
        .get("sourceNamespaces")
        .is_some_and(|v| !is_empty_value(v))
    {
        warnings.push(
            "spec.sourceNamespaces: accepted and ignored (edgecd apps are not namespaced: every app of the project is admitted)"
                .into(),
        );
    }
    let mut out = ProjectSpec {
        description: obj
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        ..ProjectSpec::default()
    };
    if let Some(repos) = obj.get("sourceRepos").filter(|v| !v.is_null()) {
        out.source_repos = serde_json::from_value(repos.clone())
            .map_err(|e| fail("spec.sourceRepos", e.to_string()))?;
    }
    out.cluster_resource_whitelist = group_kinds(
        obj.get("clusterResourceWhitelist"),
        "spec.clusterResourceWhitelist",
    )?;
    out.cluster_resource_blacklist = group_kinds(
        obj.get("clusterResourceBlacklist"),
        "spec.clusterResourceBlacklist",
    )?;
    out.namespace_resource_blacklist = group_kinds(
        obj.get("namespaceResourceBlacklist"),
        "spec.namespaceResourceBlacklist",
    )?;
    if let Some(w) = obj
        .get("namespaceResourceWhitelist")
        .filter(|v| !v.is_null())
    {
        out.namespace_resource_whitelist =
            Some(group_kinds(Some(w), "spec.namespaceResourceWhitelist")?);
    }
    if let Some(o) = obj.get("orphanedResources").filter(|v| !v.is_null()) {
        let at = "spec.orphanedResources";
        let o = as_object(o, at)?;
        check_keys(o, at, &["warn", "ignore"], &[])?;
        out.orphaned_resources = Some(OrphanedResources {
            warn: match o.get("warn") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(fail(&format!("{at}.warn"), "expected true or false")),
            },
            ignore: group_kinds(o.get("ignore"), &format!("{at}.ignore"))?,
        });
    }
    if let Some(w) = obj.get("syncWindows").filter(|v| !is_empty_value(v)) {
        let windows = as_array(w, "spec.syncWindows")?;
        for (i, window) in windows.iter().enumerate() {
            as_object(window, &format!("spec.syncWindows[{i}]"))?;
        }
        out.sync_windows = windows.clone();
        warnings.push(format!(
            "spec.syncWindows: {} window(s) accepted, not enforced yet (syncs run at any time)",
            windows.len()
        ));
    }
    if let Some(roles) = obj.get("roles").filter(|v| !v.is_null()) {
        if edgecd {
            out.roles = serde_json::from_value::<Vec<RoleBinding>>(roles.clone())
                .map_err(|e| fail("spec.roles", e.to_string()))?;
        } else {
            for (i, role) in as_array(roles, "spec.roles")?.iter().enumerate() {
                let at = format!("spec.roles[{i}]");
                if let Some(binding) = argo_role(project, as_object(role, &at)?, &at, warnings)? {
                    out.roles.push(binding);
                }
            }
        }
    }
    let mut servers = Vec::new();
    if let Some(dests) = obj.get("destinations").filter(|v| !v.is_null()) {
        for (i, d) in as_array(dests, "spec.destinations")?.iter().enumerate() {
            let at = format!("spec.destinations[{i}]");
            let d = as_object(d, &at)?;
            check_keys(
                d,
                &at,
                &["server", "name", "namespace", "clusters", "clusterSelector"],
                &[],
            )?;
            let text = |k: &str| -> Result<String, (String, String)> {
                match d.get(k) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(fail(&format!("{at}.{k}"), "expected a string")),
                }
            };
            let (server, name) = (text("server")?, text("name")?);
            let mut dest = ProjectDestination {
                namespace: text("namespace")?,
                ..ProjectDestination::default()
            };
            if let Some(c) = d.get("clusters").filter(|v| !v.is_null()) {
                dest.clusters = serde_json::from_value(c.clone())
                    .map_err(|e| fail(&format!("{at}.clusters"), e.to_string()))?;
            }
            if let Some(s) = d.get("clusterSelector").filter(|v| !v.is_null()) {
                dest.cluster_selector = Some(
                    serde_json::from_value::<LabelSelector>(s.clone())
                        .map_err(|e| fail(&format!("{at}.clusterSelector"), e.to_string()))?,
                );
            }
            let mut add = |entry: String| {
                if !dest.clusters.contains(&entry) {
                    dest.clusters.push(entry);
                }
            };
            let server = server.trim_end_matches('/');
            if name == "in-cluster" || server == IN_CLUSTER_SERVER {
                add(IN_CLUSTER_SERVER.to_owned());
            }
            if !name.is_empty() && name != "in-cluster" {
                add(name.clone());
            }
            if server == "*" {
                add("*".to_owned());
            } else if !server.is_empty() && server != IN_CLUSTER_SERVER {
                if !server.contains("://") {
                    return Err(fail(
                        &format!("{at}.server"),
                        format!("{server:?} is not an API server URL (https://host:port) or *"),
                    ));
                }
                add(server.to_owned());
                servers.push((out.destinations.len(), server.to_owned()));
            }
            if dest.clusters.is_empty() && dest.cluster_selector.is_none() {
                warnings.push(format!(
                    "{at}: names no server, name, clusters or clusterSelector, so it matches no cluster (as in Argo CD)"
                ));
            }
            out.destinations.push(dest);
        }
    }
    Ok((out, servers))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::json;

    use super::*;

    fn fixtures() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        assert!(
            dir.is_dir(),
            "fixtures missing at {} — these tests read the repository's testdata/",
            dir.display()
        );
        dir
    }

    fn load(rel: &str) -> Vec<Value> {
        let path = fixtures().join(rel);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()));
        edgecd_render::yaml::load_documents(&text)
            .unwrap()
            .into_iter()
            .filter(|d| !d.is_null())
            .collect()
    }

    /// kube-prometheus's Argo CD example (a Jsonnet directory with a vendored library path) imports with its
    /// Jsonnet options.
    #[test]
    fn the_kube_prometheus_jsonnet_application_parses() {
        let docs = load(
            "argocd-realworld/059-kube-prometheus-examples-continuous-delivery-argocd-application.yaml",
        );
        let Document::Application(imported) = parse_document(&docs[0]).unwrap() else {
            panic!("not an application");
        };
        let directory = imported.spec.source.directory.unwrap();
        assert!(directory.recurse);
        assert_eq!(directory.jsonnet.unwrap().libs, ["vendored"]);
    }

    fn app(spec: Value) -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "demo", "namespace": "argocd"},
            "spec": spec
        })
    }

    fn base_spec() -> Value {
        json!({
            "project": "edge",
            "source": {"repoURL": "https://git.example/r", "targetRevision": "main", "path": "deploy"},
            "destination": {"name": "paris", "namespace": "web"}
        })
    }

    fn refused(doc: &Value) -> ImportError {
        parse_document(doc).expect_err("document should be refused")
    }

    #[test]
    fn talk_demo_applications() {
        let docs = load("talk-demo-repo/deploy/applications.yaml");
        assert_eq!(docs.len(), 3);
        for (i, doc) in docs.iter().enumerate() {
            let Document::Application(app) = parse_document(doc).unwrap() else {
                panic!("expected an Application");
            };
            let n = i + 1;
            assert_eq!(app.name, format!("demo-cluster{n}"));
            assert_eq!(app.project, "kubecon-demo");
            assert_eq!(app.spec.project, "kubecon-demo");
            assert_eq!(app.spec.source.path, format!("deploy/overlays/cluster{n}"));
            assert_eq!(
                app.spec.source.repo_url,
                "https://github.com/qingkunl/argocd-app-of-apps-demo.git"
            );
            assert_eq!(app.spec.source.target_revision, "HEAD");
            assert_eq!(app.spec.destination.namespace, "gitops-kubecon-demo");
            assert!(app.spec.destination.cluster.is_empty());
        }
        let servers: Vec<String> = docs
            .iter()
            .map(|d| match parse_document(d).unwrap() {
                Document::Application(a) => a.spec.destination.server,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            servers,
            [
                "https://10.62.25.11:6443",
                "https://10.62.33.11:6443",
                "https://10.62.45.11:6443"
            ]
        );
    }

    #[test]
    fn appset_fixtures() {
        for (file, name, generators) in [
            ("nginx-per-cluster.yaml", "nginx", 1),
            ("cluster-addons.yaml", "cluster-addons", 1),
        ] {
            let docs = load(&format!("edge-fleet-repo/appsets/{file}"));
            let Document::ApplicationSet(set) = parse_document(&docs[0]).unwrap() else {
                panic!("expected an ApplicationSet");
            };
            assert_eq!(set.name, name);
            assert_eq!(set.project, "default");
            assert_eq!(set.spec.generators.len(), generators);
        }
        // A templated project falls back to `default`; a literal one is kept.
        let mut doc = load("edge-fleet-repo/appsets/nginx-per-cluster.yaml").remove(0);
        doc["spec"]["template"]["spec"]["project"] = json!("{{name}}");
        let Document::ApplicationSet(set) = parse_document(&doc).unwrap() else {
            panic!("expected an ApplicationSet");
        };
        assert_eq!(set.project, "default");
        doc["spec"]["template"]["spec"]["project"] = json!("edge");
        let Document::ApplicationSet(set) = parse_document(&doc).unwrap() else {
            panic!("expected an ApplicationSet");
        };
        assert_eq!(set.project, "edge");
        doc["spec"]["generators"][0] = json!({"scmProvider": {"gitlab": {}}});
        let err = refused(&doc);
        assert_eq!(err.field, "spec.generators[0].scmProvider");
        assert_eq!(err.source, "argoproj.io/v1alpha1 ApplicationSet nginx");
    }

    #[test]
    fn accepted_and_ignored_fields() {
        let mut doc = app(base_spec());
        doc["metadata"]["finalizers"] = json!([
            "resources-finalizer.argocd.argoproj.io",
            "resources-finalizer.argocd.argoproj.io/background"
        ]);
        doc["metadata"]["uid"] = json!("1234");
        doc["metadata"]["resourceVersion"] = json!("99");
        doc["metadata"]["generation"] = json!(3);
        doc["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
        doc["metadata"]["managedFields"] = json!([{"manager": "kubectl"}]);
        doc["metadata"]["labels"] = json!({"team": "web"});
        doc["status"] = json!({"sync": {"status": "Synced"}});
        doc["spec"]["info"] = json!([{"name": "url", "value": "https://x"}]);
        doc["spec"]["syncPolicy"] = json!({
            "automated": {"enabled": false, "prune": true},
            "syncOptions": ["CreateNamespace=true", "ServerSideApply=true", "PrunePropagationPolicy=orphan"],
            "managedNamespaceMetadata": {"labels": {"team": "web"}, "annotations": {"a": "b"}},
            "retry": {"limit": 3, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
        });
        doc["spec"]["source"]["kustomize"] = json!({"namePrefix": "p-", "images": ["nginx:1.27"]});
        doc["spec"]["ignoreDifferences"] =
            json!([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]);
        let Document::Application(app) = parse_document(&doc).unwrap() else {
            panic!("expected an Application");
        };
        assert_eq!(app.project, "edge");
        assert_eq!(app.labels["team"], "web");
        assert_eq!(app.spec.destination.cluster, "paris");
        assert!(
            app.spec.automated().is_none(),
            "enabled: false turns automation off"
        );
        assert!(app.spec.sync_option_enabled("CreateNamespace"));
        assert_eq!(app.spec.source.kustomize.unwrap().name_prefix, "p-");
        assert_eq!(
            app.spec.managed_namespace_metadata.unwrap().labels["team"],
            "web"
        );
        assert_eq!(app.spec.info[0].name, "url");
        let (_, warnings) = parse_document_warned(&doc).unwrap();
        for field in ["status", "metadata.finalizers[0]", "metadata.finalizers[1]"] {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with(&format!("{field}: "))),
                "no warning for {field}: {warnings:?}"
            );
        }

        let mut doc = app_doc_with_automation(json!({"enabled": true, "selfHeal": true}));
        let Document::Application(app) = parse_document(&doc).unwrap() else {
            panic!("expected an Application");
        };
        assert!(app.spec.automated().unwrap().self_heal);
        doc["spec"]["project"] = json!("");
        let Document::Application(app) = parse_document(&doc).unwrap() else {
            panic!("expected an Application");
        };
        assert_eq!(app.project, "default");
        // edgecd's own apiVersion is accepted too.
        doc["apiVersion"] = json!("edgecd.io/v1alpha1");
        assert!(parse_document(&doc).is_ok());
    }

    fn app_doc_with_automation(automated: Value) -> Value {
        let mut doc = app(base_spec());
        doc["spec"]["syncPolicy"] = json!({"automated": automated});
        doc
    }

    /// Paths leaving the repository, invalid namespaces and labels, and `javascript:` URLs refuse
    /// the document, naming the field.
    #[test]
    fn invalid_application_values_are_refused_by_field() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("path", json!("../../etc"), "spec.source.path"),
            ("path", json!("/etc"), "spec.source.path"),
            ("path", json!("a\u{0}b"), "spec.source.path"),
            (
                "repoURL",
                json!("javascript:alert(1)"),
                "spec.source.repoURL",
            ),
        ];
        for (key, value, field) in cases {
            let mut spec = base_spec();
            spec["source"][key] = value;
            assert_eq!(refused(&app(spec)).field, field);
        }
        let mut spec = base_spec();
        spec["destination"]["namespace"] = json!("Not_A_Namespace");
        assert_eq!(refused(&app(spec)).field, "spec.destination.namespace");
        let mut doc = app(base_spec());
        doc["metadata"]["labels"] = json!({"k".repeat(10_000): "v"});
        assert_eq!(refused(&doc).field, "metadata.labels");
    }

    /// Argo CD's source hydrator: its dry source is what edgecd renders at every spoke, so it is imported as
    /// `spec.source`, with a warning that no hydrated commit is written; a source beside it is ignored (as Argo CD
    /// does, with a warning); a plugin as its dry source is refused.
    #[test]
    fn a_source_hydrators_dry_source_is_the_source() {
        let dry = json!({"repoURL": "https://x/apps", "path": "helm-guestbook", "targetRevision": "HEAD",
                         "helm": {"releaseName": "my-release"}});
        let hydrated = |extra: Value| {
            let mut spec = json!({"project": "edge", "destination": {"namespace": "web"},
                                  "sourceHydrator": {"drySource": dry.clone(),
                                                     "syncSource": {"targetBranch": "environments/dev", "path": "hydrated"}}});
            for (k, v) in extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            app(spec)
        };
        let (Document::Application(imported), warnings) =
            parse_document_warned(&hydrated(json!({}))).unwrap()
        else {
            panic!("not an application")
        };
        assert_eq!(imported.spec.source.path, "helm-guestbook");
        assert_eq!(
            imported.spec.source.helm.unwrap().release_name,
            "my-release"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("spec.sourceHydrator:") && w.contains("drySource")),
            "{warnings:?}"
        );
        // As Argo CD, a source beside the hydrator is ignored.
        let (Document::Application(imported), warnings) =
            parse_document_warned(&hydrated(json!({"source": {"repoURL": "https://x/other"}})))
                .unwrap()
        else {
            panic!("not an application")
        };
        assert_eq!(imported.spec.source.repo_url, "https://x/apps");
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("spec.source: ignored")),
            "{warnings:?}"
        );
        let mut plugin = hydrated(json!({}));
        plugin["spec"]["sourceHydrator"]["drySource"]["plugin"] = json!({"name": "cmp"});
        assert_eq!(
            refused(&plugin).field,
            "spec.sourceHydrator.drySource.plugin"
        );
    }

    /// Argo CD's Helm sources (a chart directory in git, a chart of a chart repository) map onto
    /// `source.helm` and `source.chart`, every field kept; `values` written as a mapping is `valuesObject`.
    #[test]
    fn helm_sources_are_imported() {
        let mut spec = base_spec();
        spec["source"]["helm"] = json!({
            "releaseName": "web",
            "valueFiles": ["values-paris.yaml", "../common/values.yaml"],
            "values": "replicas: 2\n",
            "parameters": [{"name": "image.tag", "value": "1.2", "forceString": true}],
            "fileParameters": [{"name": "config", "path": "files/config.txt"}],
            "skipCrds": true,
            "skipSchemaValidation": true,
            "namespace": "web",
            "kubeVersion": "1.33.0",
            "apiVersions": ["monitoring.coreos.com/v1"],
            "passCredentials": false,
            "ignoreMissingValueFiles": true,
            "version": "v3"
        });
        let Document::Application(imported) = parse_document(&app(spec)).unwrap() else {
            panic!("expected an Application");
        };
        let helm = imported.spec.source.helm.as_ref().unwrap();
        assert_eq!(helm.release_name, "web");
        assert_eq!(helm.value_files.len(), 2);
        assert!(helm.parameters[0].force_string);
        assert_eq!(helm.file_parameters[0].path, "files/config.txt");
        assert!(helm.skip_crds && helm.skip_schema_validation && helm.ignore_missing_value_files);
        assert_eq!(helm.api_versions, ["monitoring.coreos.com/v1"]);
        assert!(imported.spec.source.is_helm());

        let mut spec = base_spec();
        spec["source"] = json!({
            "repoURL": "https://charts.example/stable",
            "chart": "nginx",
            "targetRevision": "^1.2.0",
            "helm": {"values": {"replicaCount": 3}}
        });
        let Document::Application(imported) = parse_document(&app(spec)).unwrap() else {
            panic!("expected an Application");
        };
        assert_eq!(imported.spec.source.chart, "nginx");
        let helm = imported.spec.source.helm.as_ref().unwrap();
        assert_eq!(helm.values_object, Some(json!({"replicaCount": 3})));
        assert!(helm.values.is_empty());
    }

    #[test]
    fn unsupported_application_fields_are_named() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"helm": {"valueFiles": ["values.yaml"], "extra": 1}}),
                "spec.source.helm.extra",
            ),
            (
                json!({"helm": {"parameters": [{"name": "a", "x": 1}]}}),
                "spec.source.helm.parameters[0].x",
            ),
            (
                json!({"helm": {"valueFiles": ["../../../etc/passwd"]}}),
                "spec.source.helm.valueFiles[0]",
            ),
            (json!({"chart": "../nginx"}), "spec.source.chart"),
            (json!({"plugin": {"name": "cmp"}}), "spec.source.plugin"),
            (json!({"ref": "values"}), "spec.source.ref"),
            (
                json!({"directory": {"jsonnet": {"tlas": [{"name": "a", "x": 1}]}}}),
                "spec.source.directory.jsonnet.tlas[0].x",
            ),
            (
                json!({"directory": {"jsonnet": {"extVars": [{"value": "v"}]}}}),
                "spec.source.directory.jsonnet.extVars[0].name",
            ),
            (
                json!({"directory": {"jsonnet": {"libs": ["../outside"]}}}),
                "spec.source.directory.jsonnet.libs[0]",
            ),
            (
                json!({"directory": {"jsonnet": {"jpaths": ["vendor"]}}}),
                "spec.source.directory.jsonnet.jpaths",
            ),
            (
                json!({"kustomize": {"patches": [{"target": {"kind": "X"}}]}}),
                "spec.source.kustomize.patches[0]",
            ),
            (
                json!({"kustomize": {"patches": [{"path": "../../x.yaml"}]}}),
                "spec.source.kustomize.patches[0].path",
            ),
            (
                json!({"kustomize": {"components": ["/abs"]}}),
                "spec.source.kustomize.components[0]",
            ),
            (
                json!({"repoURL": "oci://registry-1.docker.io"}),
                "spec.source.repoURL",
            ),
            (
                json!({"kustomize": {"replicas": [{"name": "web", "count": 2, "x": 1}]}}),
                "spec.source.kustomize.replicas[0].x",
            ),
        ];
        for (source_patch, field) in cases {
            let mut spec = base_spec();
            for (k, v) in source_patch.as_object().unwrap() {
                spec["source"][k] = v.clone();
            }
            let err = refused(&app(spec));
            assert_eq!(err.field, field, "{err}");
            assert_eq!(err.source, "argoproj.io/v1alpha1 Application demo");
            assert!(
                err.to_string()
                    .starts_with(&format!("argoproj.io/v1alpha1 Application demo: {field}: "))
            );
        }
        let err = refused(&app(
            json!({"project": "edge", "sources": [], "destination": {}}),
        ));
        assert_eq!(err.field, "spec.sources");
        let err = refused(&app(
            json!({"project": "edge", "source": {"repoURL": "https://x/r", "helm": {"valueFiles": ["$values/v.yaml"]}}}),
        ));
        assert!(
            err.message.contains("multi-source applications"),
            "{}",
            err.message
        );
        // A multi-source app: a `$ref` names a ref of its sources, refs are unique and well formed, and
        // something is rendered.
        let multi = |sources: Value| {
            app(json!({"project": "edge", "sources": sources, "destination": {"namespace": "web"}}))
        };
        let chart = json!({"repoURL": "https://x/charts", "path": "web", "helm": {"valueFiles": ["$values/web/values.yaml"]}});
        let values = json!({"repoURL": "https://x/values", "ref": "values"});
        for (sources, field, cause) in [
            (
                json!([chart.clone()]),
                "spec.sources[0].helm.valueFiles[0]",
                "no source has ref \"values\"",
            ),
            (
                json!([chart.clone(), values.clone(), values.clone()]),
                "spec.sources[2].ref",
                "ref of an earlier source",
            ),
            (
                json!([values.clone()]),
                "spec.sources",
                "nothing would be rendered",
            ),
            (
                json!([chart.clone(), {"repoURL": "https://x/values", "ref": "va lues"}]),
                "spec.sources[1].ref",
                "is not a source ref",
            ),
            (
                json!([{"repoURL": "https://x/charts", "path": "web", "helm": {"valueFiles": ["$values/../../etc/passwd"]}}, values.clone()]),
                "spec.sources[0].helm.valueFiles[0]",
                "leaves the repository of $values",
            ),
            (
                json!([chart.clone(), {"repoURL": "https://x/c", "chart": "web", "ref": "values"}]),
                "spec.sources[1].ref",
                "refs name git sources",
            ),
        ] {
            let err = refused(&multi(sources));
            assert_eq!(err.field, field, "{err}");
            assert!(err.message.contains(cause), "{err}");
        }
        let Document::Application(imported) =
            parse_document(&multi(json!([chart.clone(), values.clone()]))).unwrap()
        else {
            panic!("not an application")
        };
        assert_eq!(imported.spec.sources.len(), 2);
        assert!(imported.spec.source.is_unset());
        assert_eq!(imported.spec.sources[1].ref_name, "values");
        assert!(!imported.spec.sources[1].is_rendered());
        assert_eq!(imported.spec.primary_source().repo_url, "https://x/charts");
        // An OCI artifact (Argo CD 3.1's OCI sources): the URL names it, `path` is a directory inside.
        let Document::Application(artifact) = parse_document(&app(
            json!({"project": "edge", "source": {"repoURL": "oci://r.example/team/manifests", "path": "web", "targetRevision": "1.0.0"}}),
        ))
        .unwrap() else {
            panic!("not an application")
        };
        assert!(artifact.spec.source.is_oci_artifact());
        assert_eq!(artifact.spec.source.path, "web");
        let err = refused(&app(
            json!({"project": "edge", "source": {"repoURL": "oci://r.example", "path": "web"}}),
        ));
        assert_eq!(err.field, "spec.source.repoURL");
        // A Helm chart of an OCI registry is a chart source.
        let Document::Application(oci) = parse_document(&app(
            json!({"project": "edge", "source": {"repoURL": "oci://r.example/charts", "chart": "web", "targetRevision": "1.2.x"}}),
        ))
        .unwrap() else {
            panic!("not an application")
        };
        assert_eq!(oci.spec.source.chart, "web");
        // Argo CD's spelling without a scheme is the same chart.
        let Document::Application(bare) = parse_document(&app(
            json!({"project": "edge", "source": {"repoURL": "registry-1.docker.io/bitnamicharts", "chart": "nginx", "targetRevision": "15.9.0"}}),
        ))
        .unwrap() else {
            panic!("not an application")
        };
        assert_eq!(
            bare.spec.source.repo_url,
            "oci://registry-1.docker.io/bitnamicharts"
        );
        // With the image in `path` and no chart, it is the OCI artifact the path names.
        let Document::Application(bare) = parse_document(&app(
            json!({"project": "edge", "source": {"repoURL": "registry-1.docker.io", "path": "bitnamicharts/nginx", "targetRevision": "1.16.1"}}),
        ))
        .unwrap() else {
            panic!("not an application")
        };
        assert_eq!(
            (
                bare.spec.source.repo_url.as_str(),
                bare.spec.source.path.as_str()
            ),
            ("oci://registry-1.docker.io/bitnamicharts/nginx", ".")
        );
        assert!(bare.spec.source.is_oci_artifact());
        // A host with a path, or a path leaving the image, stays what it is (and is refused as a URL).
        for (url, path) in [
            ("github.com/org/repo", "apps"),
            ("registry-1.docker.io", "../x"),
        ] {
            let err = refused(&app(
                json!({"project": "edge", "source": {"repoURL": url, "path": path}}),
            ));
            assert_eq!(err.field, "spec.source.repoURL", "{url} {path}");
        }
        let mut spec = base_spec();
        spec["sourceHydrator"] = json!({"syncSource": {"targetBranch": "env/dev"}});
        assert_eq!(refused(&app(spec)).field, "spec.sourceHydrator.drySource");
        let mut spec = base_spec();
        spec["syncPolicy"] =
            json!({"managedNamespaceMetadata": {"labels": {"a": "b"}, "finalizers": []}});
        assert_eq!(
            refused(&app(spec)).field,
            "spec.syncPolicy.managedNamespaceMetadata.finalizers"
        );
        let mut spec = base_spec();
        spec["ignoreDifferences"] =
            json!([{"kind": "Secret", "jqPathExpressions": [".data", "def f: f; f"]}]);
        let err = refused(&app(spec));
        assert_eq!(err.field, "spec.ignoreDifferences[0].jqPathExpressions[1]");
        assert!(err.message.contains("\"def\""), "{err}");
        let mut spec = base_spec();
        spec["ignoreDifferences"] = json!([{"kind": "Secret", "jsonPointers": ["data"]}]);
        assert_eq!(
            refused(&app(spec)).field,
            "spec.ignoreDifferences[0].jsonPointers[0]"
        );
        for (option, message) in [
            ("SomethingNew=true", "unknown sync option \"SomethingNew\""),
            (
                "PrunePropagationPolicy=later",
                "expected foreground, background, orphan",
            ),
            ("CreateNamespace", "is not Key=value"),
        ] {
            let mut spec = base_spec();
            spec["syncPolicy"] = json!({"syncOptions": ["PruneLast=true", option]});
            let err = refused(&app(spec));
            assert_eq!(err.field, "spec.syncPolicy.syncOptions[1]");
            assert!(err.message.contains(message), "{err}");
        }
        let mut spec = base_spec();
        spec["destination"]["cluster"] = json!("x");
        assert_eq!(refused(&app(spec)).field, "spec.destination.cluster");

        let mut doc = app(base_spec());
        doc["operation"] = json!({"sync": {}});
        let (_, warnings) = parse_document_warned(&doc).unwrap();
        assert!(
            warnings[0].starts_with("operation: accepted and ignored"),
            "{warnings:?}"
        );
        let mut doc = app(base_spec());
        doc["metadata"]["finalizers"] = json!(["example.com/keep"]);
        assert_eq!(refused(&doc).field, "metadata.finalizers[0]");
        let mut doc = app(base_spec());
        doc["metadata"]["ownerReferences"] = json!([{"kind": "X"}]);
        assert_eq!(refused(&doc).field, "metadata.ownerReferences");
        let mut doc = app(base_spec());
        doc["apiVersion"] = json!("argoproj.io/v1beta1");
        assert_eq!(refused(&doc).field, "apiVersion");
        let mut doc = app(base_spec());
        doc["kind"] = json!("Rollout");
        assert_eq!(refused(&doc).field, "kind");
        let mut doc = app(base_spec());
        doc["metadata"]["name"] = json!("Not_Valid");
        assert_eq!(refused(&doc).field, "metadata.name");
        let mut doc = app(base_spec());
        doc["spec"]["project"] = json!("Bad Project");
        assert_eq!(refused(&doc).field, "spec.project");
        let mut doc = app(base_spec());
        doc["spec"]["revisionHistoryLimit"] = json!("ten");
        assert_eq!(refused(&doc).field, "spec");
    }

    #[test]
    fn app_projects_map_onto_edgecd_projects() {
        let doc = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": "kubecon-demo", "namespace": "argocd"},
            "spec": {
                "description": "demo",
                "sourceRepos": ["https://github.com/qingkunl/*"],
                "destinations": [
                    {"server": "https://10.62.25.11:6443", "namespace": "gitops-*"},
                    {"name": "edge-*", "namespace": "*"},
                    {"server": "*", "namespace": "kube-system"}
                ],
                "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
                "clusterResourceBlacklist": [{"group": "rbac.authorization.k8s.io", "kind": "*"}],
                "namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}],
                "roles": [],
                "orphanedResources": null
            }
        });
        let Document::Project(p) = parse_document(&doc).unwrap() else {
            panic!("expected a project");
        };
        assert_eq!(p.name, "kubecon-demo");
        assert_eq!(p.spec.description, "demo");
        assert_eq!(p.spec.source_repos, ["https://github.com/qingkunl/*"]);
        assert_eq!(p.spec.destinations.len(), 3);
        assert_eq!(
            p.spec.destinations[0].clusters,
            ["https://10.62.25.11:6443"]
        );
        assert_eq!(p.spec.destinations[0].namespace, "gitops-*");
        assert_eq!(
            p.destination_servers,
            [(0, "https://10.62.25.11:6443".to_owned())]
        );
        assert_eq!(p.spec.destinations[1].clusters, ["edge-*"]);
        assert_eq!(p.spec.destinations[2].clusters, ["*"]);
        assert_eq!(p.spec.cluster_resource_whitelist[0].kind, "Namespace");
        assert_eq!(
            p.spec.cluster_resource_blacklist[0].group,
            "rbac.authorization.k8s.io"
        );
        assert_eq!(p.spec.namespace_resource_blacklist[0].kind, "ResourceQuota");
        assert!(p.spec.roles.is_empty());

        // Argo CD fields edgecd now maps or keeps.
        let mut d = doc.clone();
        d["spec"]["roles"] = json!([
            {"name": "ro", "policies": ["p, proj:kubecon-demo:ro, applications, get, kubecon-demo/*, allow"], "groups": ["viewers"]},
            {"name": "ci", "policies": [
                "p, proj:kubecon-demo:ci, applications, get, kubecon-demo/*, allow",
                "p, proj:kubecon-demo:ci, applications, sync, kubecon-demo/*, allow"
            ], "groups": ["ci"], "jwtTokens": [{"iat": 1}]},
            {"name": "admin", "policies": ["p, proj:kubecon-demo:admin, applications, *, kubecon-demo/*, allow"], "groups": ["admins"]}
        ]);
        d["spec"]["syncWindows"] =
            json!([{"kind": "deny", "schedule": "* * * * *", "duration": "1h"}]);
        d["spec"]["sourceNamespaces"] = json!(["team-*"]);
        d["spec"]["orphanedResources"] =
            json!({"warn": true, "ignore": [{"kind": "ConfigMap", "name": "kube-root-ca.crt"}]});
        d["spec"]["namespaceResourceWhitelist"] = json!([{"group": "apps", "kind": "Deployment"}]);
        d["spec"]["destinations"][1] = json!({"name": "in-cluster", "server": "https://kubernetes.default.svc", "namespace": "guestbook"});
        d["spec"]["clusterResourceBlacklist"] =
            json!([{"group": "", "kind": "Namespace", "name": "kube-*"}]);
        let (Document::Project(p), warnings) = parse_document_warned(&d).unwrap() else {
            panic!("expected a project");
        };
        let roles: Vec<(ProjectRole, Vec<String>)> = p
            .spec
            .roles
            .iter()
            .map(|r| (r.role, r.groups.clone()))
            .collect();
        assert_eq!(
            roles,
            [
                (ProjectRole::Viewer, vec!["viewers".to_owned()]),
                (ProjectRole::Deployer, vec!["ci".to_owned()]),
                (ProjectRole::Owner, vec!["admins".to_owned()])
            ]
        );
        assert_eq!(p.spec.sync_windows.len(), 1);
        assert!(p.spec.orphaned_resources.as_ref().unwrap().warns());
        assert_eq!(
            p.spec.namespace_resource_whitelist.as_ref().unwrap()[0].kind,
            "Deployment"
        );
        assert_eq!(p.spec.destinations[1].clusters, [IN_CLUSTER_SERVER]);
        assert_eq!(p.spec.cluster_resource_blacklist[0].name, "kube-*");
        for field in [
            "spec.roles[1].jwtTokens",
            "spec.roles[2].policies[0]",
            "spec.syncWindows",
            "spec.sourceNamespaces",
        ] {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with(&format!("{field}: "))),
                "no warning for {field}: {warnings:?}"
            );
        }
        assert!(warnings.iter().any(|w| w.contains("not enforced yet")));

        // What edgecd refuses, by field and why.
        for (field, value, path) in [
            (
                "signatureKeys",
                json!([{"keyID": "ABC"}]),
                "spec.signatureKeys",
            ),
            (
                "destinationServiceAccounts",
                json!([{"server": "*"}]),
                "spec.destinationServiceAccounts",
            ),
            (
                "permitOnlyProjectScopedClusters",
                json!(true),
                "spec.permitOnlyProjectScopedClusters",
            ),
            (
                "roles",
                json!([{"name": "ci", "policies": ["p, proj:kubecon-demo:ci, applications, sync, kubecon-demo/guestbook, allow"], "groups": ["g"]}]),
                "spec.roles[0].policies[0]",
            ),
            (
                "roles",
                json!([{"name": "ci", "policies": ["p, proj:kubecon-demo:ci, applications, get, kubecon-demo/*, deny"], "groups": ["g"]}]),
                "spec.roles[0].policies[0]",
            ),
            (
                "roles",
                json!([{"name": "ci", "policies": ["p, proj:kubecon-demo:ci, clusters, get, *, allow"], "groups": ["g"]}]),
                "spec.roles[0].policies[0]",
            ),
        ] {
            let mut d = doc.clone();
            d["spec"][field] = value;
            let err = refused(&d);
            assert_eq!(err.field, path, "{err}");
            assert_eq!(err.source, "argoproj.io/v1alpha1 AppProject kubecon-demo");
        }
        // A role with no groups is Argo CD's JWT-token-only role: not imported, whatever its policies (an
        // app-scoped CI role is refused above only because it has groups to grant it to).
        let mut d = doc.clone();
        d["spec"]["roles"] = json!([{"name": "ci", "policies": ["p, proj:kubecon-demo:ci, applications, sync, kubecon-demo/guestbook-dev, allow"], "jwtTokens": [{"iat": 1535390316}]}]);
        let (Document::Project(project), warnings) = parse_document_warned(&d).unwrap() else {
            panic!("not a project")
        };
        assert!(project.spec.roles.is_empty(), "{:?}", project.spec.roles);
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("spec.roles[0]: role \"ci\" has no groups")),
            "{warnings:?}"
        );
        // A destination naming no cluster matches none, as in Argo CD: accepted with a warning.
        let mut d = doc.clone();
        d["spec"]["destinations"][1] = json!({"namespace": "x"});
        let (_, warnings) = parse_document_warned(&d).unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("spec.destinations[1]: "))
        );

        // edgecd's own Project kind keeps edgecd roles and label-selected destinations.
        let own = json!({
            "apiVersion": "edgecd.io/v1alpha1",
            "kind": "Project",
            "metadata": {"name": "edge"},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"clusterSelector": {"matchLabels": {"region": "eu"}}, "namespace": "*"}],
                "roles": [{"role": "Deployer", "groups": ["sre"]}]
            }
        });
        let Document::Project(p) = parse_document(&own).unwrap() else {
            panic!("expected a project");
        };
        assert_eq!(p.spec.roles.len(), 1);
        assert!(p.spec.destinations[0].cluster_selector.is_some());
        assert!(p.destination_servers.is_empty());
    }
}
