//! Evaluation: generators produce parameter sets (shaped per template mode as Argo CD's are), post-selectors filter them, and the template (merged with the generator's own) is rendered once per set into a checked Application.

use std::collections::BTreeMap;

use serde_json::Value;

use super::template::{Mode, Renderer, flatten_params, sanitize_name, scalar_text};
use super::{
    AppSetError, AppTemplate, ApplicationSetSpec, ClustersGenerator, EvalContext, GeneratedApp,
    Generator, GeneratorKind, GitGenerator, ListGenerator, MergeGenerator, Params, glob_match,
};
use crate::app::ApplicationSpec;
use crate::argo_spec::{check_application_spec, normalize_application_spec};
use crate::names::AppName;

/// Most bytes an `elementsYaml` or a rendered `templatePatch` may hold.
const MAX_YAML_BYTES: usize = 1024 * 1024;

/// Runs every generator and renders the template once per parameter set. Apps come back sorted by name; two sets rendering the same name, an invalid name, or a rendered spec edgecd does not support are errors.
pub fn generate(
    spec: &ApplicationSetSpec,
    ctx: &EvalContext<'_>,
) -> Result<Vec<GeneratedApp>, AppSetError> {
    let generation = generate_each(spec, ctx)?;
    match generation.duplicates.into_iter().next() {
        Some((_, error)) => Err(error),
        None => Ok(generation.apps),
    }
}

/// What one evaluation generated: the apps, and the names two or more parameter sets rendered (each with an
/// error naming every parameter set that rendered it), which are left out of `apps`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub apps: Vec<GeneratedApp>,
    pub duplicates: Vec<(String, AppSetError)>,
}

/// As [`generate`], but a name rendered more than once leaves out only that name (reported in
/// [`Generation::duplicates`], naming every parameter set that rendered it): the rest proceeds.
pub fn generate_each(
    spec: &ApplicationSetSpec,
    ctx: &EvalContext<'_>,
) -> Result<Generation, AppSetError> {
    let mode = Mode::of(spec)?;
    let mut apps: BTreeMap<String, GeneratedApp> = BTreeMap::new();
    let mut twice: BTreeMap<String, Vec<Params>> = BTreeMap::new();
    for (i, g) in spec.generators.iter().enumerate() {
        let path = format!("spec.generators[{i}]");
        let merged;
        let template = match g.kind.template() {
            Some(own) => {
                merged = merge_template(own, &spec.template, &path)?;
                &merged
            }
            None => &spec.template,
        };
        for params in eval_generator(g, ctx, &mode, &path, 0)? {
            let app = render_app(spec, template, &mode, params)?;
            if let Some(seen) = twice.get_mut(&app.name) {
                seen.push(app.params);
                continue;
            }
            if let Some(other) = apps.remove(&app.name) {
                twice.insert(app.name.clone(), vec![other.params, app.params]);
                continue;
            }
            apps.insert(app.name.clone(), app);
        }
    }
    let duplicates = twice
        .into_iter()
        .map(|(name, all)| {
            let from: Vec<String> = all.iter().map(params_text).collect();
            let error = AppSetError::new(
                "spec.template.metadata.name",
                format!(
                    "application name {name:?} is generated twice, from params {}; neither is applied",
                    from.join(" and ")
                ),
            );
            (name, error)
        })
        .collect();
    Ok(Generation {
        apps: apps.into_values().collect(),
        duplicates,
    })
}

fn params_text(params: &Params) -> String {
    serde_json::to_string(params).unwrap_or_default()
}

/// Whether Go's reflection would call a JSON value empty (mergo leaves such fields to be filled).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Fills what `own` leaves empty from `base`, recursively through objects: the merge Argo CD makes of a generator's template over the set's.
fn fill_empty(own: &Value, base: &Value) -> Value {
    match (own, base) {
        (Value::Object(o), Value::Object(b)) => {
            let mut out = o.clone();
            for (k, bv) in b {
                let merged = match o.get(k) {
                    Some(ov) => fill_empty(ov, bv),
                    None => bv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (own, base) if is_zero(own) => base.clone(),
        (own, _) => own.clone(),
    }
}

/// A generator's template merged over the set's, as JSON (`{metadata, spec}`); the strict check uses it.
pub(super) fn merge_template_json(own: &Value, base: &Value) -> Value {
    fill_empty(own, base)
}

fn merge_template(
    own: &super::GeneratorTemplate,
    base: &AppTemplate,
    path: &str,
) -> Result<AppTemplate, AppSetError> {
    let own = serde_json::to_value(own).map_err(|e| AppSetError::new(path, e.to_string()))?;
    let base = serde_json::to_value(base).map_err(|e| AppSetError::new(path, e.to_string()))?;
    serde_json::from_value(merge_template_json(&own, &base))
        .map_err(|e| AppSetError::new(format!("{path}.template"), e.to_string()))
}

fn render_app(
    spec: &ApplicationSetSpec,
    template: &AppTemplate,
    mode: &Mode,
    params: Params,
) -> Result<GeneratedApp, AppSetError> {
    let meta = &template.metadata;
    // Argo CD leaves a template alone for an empty parameter set.
    let mode = if params.is_empty() { &Mode::Fast } else { mode };
    let r = Renderer::new(mode, &params);
    let name = r.text(&meta.name, "spec.template.metadata.name")?;
    let mut labels = BTreeMap::new();
    for (k, v) in &meta.labels {
        let at = format!("spec.template.metadata.labels.{k}");
        labels.insert(r.text(k, &at)?, r.text(v, &at)?);
    }
    let mut annotations = BTreeMap::new();
    for (k, v) in &meta.annotations {
        let at = format!("spec.template.metadata.annotations.{k}");
        annotations.insert(r.text(k, &at)?, r.text(v, &at)?);
    }
    let mut rendered = r.value(&template.spec, "spec.template.spec")?;
    let mut name = name;
    if let Some(patch) = &spec.template_patch {
        let text = r.text(patch, "spec.templatePatch")?;
        (name, labels, annotations, rendered) =
            apply_template_patch(&text, name, labels, annotations, rendered)?;
    }
    if name.contains("{{") {
        return Err(AppSetError::new(
            "spec.template.metadata.name",
            format!(
                "rendered name {name:?} still holds a placeholder no generator provides (params {})",
                params_text(&params)
            ),
        ));
    }
    AppName::parse(name.as_str()).map_err(|e| {
        AppSetError::new(
            "spec.template.metadata.name",
            format!("{e} (params {})", params_text(&params)),
        )
    })?;
    let in_app = |(path, message): (String, String)| {
        AppSetError::new(path, format!("{message} (application {name})"))
    };
    check_application_spec(&rendered, "spec.template.spec").map_err(in_app)?;
    normalize_application_spec(&mut rendered);
    let app_spec: ApplicationSpec = serde_json::from_value(rendered)
        .map_err(|e| AppSetError::new("spec.template.spec", format!("{e} (application {name})")))?;
    let project = if app_spec.project.is_empty() {
        "default".to_owned()
    } else {
        app_spec.project.clone()
    };
    Ok(GeneratedApp {
        name,
        project,
        labels,
        annotations,
        spec: app_spec,
        params,
    })
}

type PatchedApp = (
    String,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    Value,
);

/// Merges a rendered `templatePatch` (YAML of an Application: `metadata` and `spec`) into one generated app with JSON merge-patch semantics: objects merge, anything else (lists included) is replaced, `null` removes. The project stays as the template made it, as in Argo CD.
fn apply_template_patch(
    text: &str,
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    spec: Value,
) -> Result<PatchedApp, AppSetError> {
    let at = "spec.templatePatch";
    if text.len() > MAX_YAML_BYTES {
        return Err(AppSetError::new(
            at,
            format!(
                "the rendered patch holds {} bytes, more than the {MAX_YAML_BYTES} allowed",
                text.len()
            ),
        ));
    }
    let docs = edgecd_render::yaml::load_documents(text)
        .map_err(|e| AppSetError::new(at, format!("the rendered patch is not valid YAML: {e}")))?;
    let patch = match docs
        .into_iter()
        .filter(|d| !d.is_null())
        .collect::<Vec<_>>()
    {
        docs if docs.is_empty() => return Ok((name, labels, annotations, spec)),
        mut docs if docs.len() == 1 => docs.remove(0),
        _ => {
            return Err(AppSetError::new(
                at,
                "the rendered patch holds more than one YAML document",
            ));
        }
    };
    let Value::Object(patch_obj) = &patch else {
        return Err(AppSetError::new(
            at,
            "the rendered patch must be a YAML mapping (metadata, spec)",
        ));
    };
    if let Some(key) = patch_obj
        .keys()
        .find(|k| !matches!(k.as_str(), "metadata" | "spec"))
    {
        return Err(AppSetError::new(
            at,
            format!("the rendered patch sets {key:?}; only metadata and spec can be patched"),
        ));
    }
    let project = spec.get("project").cloned();
    let mut app = serde_json::json!({
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": spec,
    });
    merge_patch(&mut app, &patch);
    let meta = app.get("metadata").cloned().unwrap_or(Value::Null);
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let strings = |field: &str| -> Result<BTreeMap<String, String>, AppSetError> {
        match meta.get(field) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                AppSetError::new(
                    at,
                    format!("metadata.{field} after the patch must map strings to strings"),
                )
            }),
        }
    };
    let labels = strings("labels")?;
    let annotations = strings("annotations")?;
    let mut spec = app.get("spec").cloned().unwrap_or(Value::Null);
    if let Value::Object(s) = &mut spec {
        match project {
            Some(p) => s.insert("project".into(), p),
            None => s.remove("project"),
        };
    }
    Ok((name, labels, annotations, spec))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Renders a matrix's second generator with the first's parameters (its `values` resolved only where every key is known, as Argo CD does; its own template is ignored inside a matrix).
fn interpolate(
    g: &Generator,
    params: &Params,
    mode: &Mode,
    path: &str,
) -> Result<Generator, AppSetError> {
    let mut raw = serde_json::to_value(g).map_err(|e| AppSetError::new(path, e.to_string()))?;
    let r = Renderer::new(mode, params);
    let strict_mode = mode.strict();
    let strict = Renderer::new(&strict_mode, params);
    let mut held_values = None;
    if let Value::Object(obj) = &mut raw {
        for (kind, body) in obj.iter_mut() {
            if let Value::Object(body) = body {
                body.remove("template");
                if let Some(Value::Object(values)) = body.remove("values") {
                    let mut resolved = serde_json::Map::new();
                    for (k, v) in values {
                        let text = v.as_str().unwrap_or_default();
                        let out = match strict.text(text, &format!("{path}.{kind}.values.{k}")) {
                            Ok(out) => out,
                            // A key the first generator does not have: left for the generator's own parameters.
                            Err(_) if mode.is_go() => text.to_owned(),
                            Err(e) => return Err(e),
                        };
                        resolved.insert(k, Value::String(out));
                    }
                    held_values = Some((kind.clone(), resolved));
                }
            }
        }
    }
    let mut rendered = r.value(&raw, path)?;
    if let (Some((kind, values)), Value::Object(obj)) = (held_values, &mut rendered)
        && let Some(Value::Object(body)) = obj.get_mut(&kind)
    {
        body.insert("values".into(), Value::Object(values));
    }
    serde_json::from_value(rendered).map_err(|e| AppSetError::new(path, e.to_string()))
}

/// The parameter sets of one generator, after its post-selector.
fn eval_generator(
    g: &Generator,
    ctx: &EvalContext<'_>,
    mode: &Mode,
    path: &str,
    depth: usize,
) -> Result<Vec<Params>, AppSetError> {
    let sets = eval_kind(&g.kind, ctx, mode, path, depth)?;
    let Some(selector) = &g.selector else {
        return Ok(sets);
    };
    Ok(sets
        .into_iter()
        .filter(|params| selector.matches(&flat_strings(params)))
        .collect())
}

/// A parameter set as the flat string map Argo CD matches post-selectors against.
fn flat_strings(params: &Params) -> BTreeMap<String, String> {
    flatten_params(params)
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => scalar_text(&other),
            };
            (k, text)
        })
        .collect()
}

fn eval_kind(
    kind: &GeneratorKind,
    ctx: &EvalContext<'_>,
    mode: &Mode,
    path: &str,
    depth: usize,
) -> Result<Vec<Params>, AppSetError> {
    match kind {
        GeneratorKind::List(list) => eval_list(list, mode, &format!("{path}.list")),
        GeneratorKind::Clusters(c) => eval_clusters(c, ctx, mode, &format!("{path}.clusters")),
        GeneratorKind::Git(git) => eval_git(git, ctx, mode, &format!("{path}.git")),
        GeneratorKind::Matrix(m) => {
            let at = format!("{path}.matrix");
            if depth >= 2 {
                return Err(AppSetError::new(
                    &at,
                    "combination generators nest at most two levels",
                ));
            }
            let [first, second] = m.generators.as_slice() else {
                return Err(AppSetError::new(
                    format!("{at}.generators"),
                    format!(
                        "a matrix generator takes exactly two generators, found {}",
                        m.generators.len()
                    ),
                ));
            };
            let first_path = format!("{at}.generators[0]");
            let second_path = format!("{at}.generators[1]");
            let mut out = Vec::new();
            for a in eval_generator(first, ctx, mode, &first_path, depth + 1)? {
                let child = interpolate(second, &a, mode, &second_path)?;
                for b in eval_generator(&child, ctx, mode, &second_path, depth + 1)? {
                    out.push(combine(&a, b, mode, &at)?);
                }
            }
            Ok(out)
        }
        GeneratorKind::Merge(m) => eval_merge(m, ctx, mode, &format!("{path}.merge"), depth),
        GeneratorKind::ClusterDecisionResource(g) => super::decisions::eval(
            g,
            ctx,
            mode.is_go(),
            &format!("{path}.clusterDecisionResource"),
        ),
    }
}

/// One matrix product: Go templates deep-merge (the first generator's values win); fasttemplate refuses a key set twice with different values.
fn combine(a: &Params, b: Params, mode: &Mode, at: &str) -> Result<Params, AppSetError> {
    if mode.is_go() {
        let mut out = b;
        deep_merge(&mut out, a);
        return Ok(out);
    }
    let mut combined = a.clone();
    for (k, v) in b {
        match combined.get(&k) {
            Some(existing) if *existing != v => {
                return Err(AppSetError::new(
                    at,
                    format!(
                        "both child generators set parameter {k:?} with different values ({} and {})",
                        existing, v
                    ),
                ));
            }
            _ => {
                combined.insert(k, v);
            }
        }
    }
    Ok(combined)
}

/// Merges `over` into `base`: objects recursively, other values replaced unless `over`'s is empty (Go's mergo with override).
fn deep_merge(base: &mut Params, over: &Params) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            (Some(_), v) if is_zero(v) => {}
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Adds the generator's `values` (each rendered with the parameters so far): `values.<key>` in fasttemplate mode, a `values` object with Go templates.
fn add_values(
    params: &mut Params,
    values: &BTreeMap<String, String>,
    mode: &Mode,
    path: &str,
) -> Result<(), AppSetError> {
    if values.is_empty() {
        return Ok(());
    }
    let mut rendered = serde_json::Map::new();
    {
        let r = Renderer::new(mode, params);
        for (k, v) in values {
            let value = r.text(v, &format!("{path}.values.{k}"))?;
            rendered.insert(k.clone(), Value::String(value));
        }
    }
    if mode.is_go() {
        params.insert("values".into(), Value::Object(rendered));
    } else {
        for (k, v) in rendered {
            params.insert(format!("values.{k}"), v);
        }
    }
    Ok(())
}

fn eval_list(list: &ListGenerator, mode: &Mode, path: &str) -> Result<Vec<Params>, AppSetError> {
    let mut out = Vec::with_capacity(list.elements.len());
    for (i, element) in list.elements.iter().enumerate() {
        if mode.is_go() {
            out.push(element.clone());
            continue;
        }
        let mut element = element.clone();
        let values = element.remove("values");
        let mut params = flatten_params(&element);
        if let Some(values) = values {
            let at = format!("{path}.elements[{i}].values");
            let Value::Object(values) = values else {
                return Err(AppSetError::new(at, "expected an object"));
            };
            for (k, v) in flatten_params(&values) {
                params.insert(format!("values.{k}"), v);
            }
        }
        out.push(params);
    }
    if !list.elements_yaml.trim().is_empty() {
        let at = format!("{path}.elementsYaml");
        if list.elements_yaml.len() > MAX_YAML_BYTES {
            return Err(AppSetError::new(
                at,
                format!("more than {MAX_YAML_BYTES} bytes"),
            ));
        }
        let docs = edgecd_render::yaml::load_documents(&list.elements_yaml)
            .map_err(|e| AppSetError::new(&at, format!("not valid YAML: {e}")))?;
        let items = match docs.into_iter().find(|d| !d.is_null()) {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(AppSetError::new(at, "expected a YAML list of objects")),
        };
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(element) = item else {
                return Err(AppSetError::new(&at, format!("item {i} is not an object")));
            };
            out.push(if mode.is_go() {
                element
            } else {
                flatten_params(&element)
            });
        }
    }
    Ok(out)
}

fn eval_clusters(
    g: &ClustersGenerator,
    ctx: &EvalContext<'_>,
    mode: &Mode,
    path: &str,
) -> Result<Vec<Params>, AppSetError> {
    let mut out = Vec::new();
    for cluster in ctx.clusters {
        if !g.selector.matches(&cluster.labels) {
            continue;
        }
        let mut params = Params::new();
        params.insert("name".into(), cluster.name.clone().into());
        params.insert("nameNormalized".into(), sanitize_name(&cluster.name).into());
        params.insert("server".into(), cluster.server.clone().into());
        params.insert("project".into(), "".into());
        if mode.is_go() {
            let mut meta = serde_json::Map::new();
            if !cluster.annotations.is_empty() {
                meta.insert("annotations".into(), string_map(&cluster.annotations));
            }
            if !cluster.labels.is_empty() {
                meta.insert("labels".into(), string_map(&cluster.labels));
            }
            params.insert("metadata".into(), Value::Object(meta));
        } else {
            for (k, v) in &cluster.labels {
                params.insert(format!("metadata.labels.{k}"), v.clone().into());
            }
            for (k, v) in &cluster.annotations {
                params.insert(format!("metadata.annotations.{k}"), v.clone().into());
            }
        }
        add_values(&mut params, &g.values, mode, path)?;
        out.push(params);
    }
    if g.flat_list {
        let all = out.into_iter().map(Value::Object).collect();
        let mut params = Params::new();
        params.insert("clusters".into(), Value::Array(all));
        return Ok(vec![params]);
    }
    Ok(out)
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn dir_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The path parameters of a directory (and, for a file, its name) under the generator's `pathParamPrefix`:
/// `path`, `path.basename`, `path.basenameNormalized`, `path[n]` flat, or a nested `path` object with `segments`.
fn path_params(params: &mut Params, mode: &Mode, prefix: &str, dir: &str, file: Option<&str>) {
    if mode.is_go() {
        let mut p = serde_json::Map::new();
        p.insert("path".into(), dir.into());
        p.insert("basename".into(), base_name(dir).into());
        p.insert(
            "basenameNormalized".into(),
            sanitize_name(base_name(dir)).into(),
        );
        if let Some(file) = file {
            p.insert("filename".into(), base_name(file).into());
            p.insert(
                "filenameNormalized".into(),
                sanitize_name(base_name(file)).into(),
            );
        }
        p.insert(
            "segments".into(),
            Value::Array(dir.split('/').map(|s| Value::String(s.into())).collect()),
        );
        let path = Value::Object(p);
        if prefix.is_empty() {
            params.insert("path".into(), path);
        } else {
            let mut wrapper = serde_json::Map::new();
            wrapper.insert("path".into(), path);
            params.insert(prefix.to_owned(), Value::Object(wrapper));
        }
        return;
    }
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    params.insert(key("path"), dir.into());
    params.insert(key("path.basename"), base_name(dir).into());
    if let Some(file) = file {
        params.insert(key("path.filename"), base_name(file).into());
        params.insert(
            key("path.filenameNormalized"),
            sanitize_name(base_name(file)).into(),
        );
    }
    params.insert(
        key("path.basenameNormalized"),
        sanitize_name(base_name(dir)).into(),
    );
    for (i, seg) in dir.split('/').enumerate() {
        if !seg.is_empty() {
            params.insert(key(&format!("path[{i}]")), seg.into());
        }
    }
}

fn select(
    candidates: Vec<String>,
    items: &[(String, bool)],
    doublestar: bool,
    path: &str,
) -> Result<Vec<String>, AppSetError> {
    let mut out = Vec::new();
    for candidate in candidates {
        let mut include = false;
        let mut exclude = false;
        for (i, (pattern, excluded)) in items.iter().enumerate() {
            let hit = glob_match(pattern, &candidate, doublestar)
                .map_err(|m| AppSetError::new(format!("{path}[{i}].path"), m))?;
            if hit {
                if *excluded {
                    exclude = true;
                } else {
                    include = true;
                }
            }
        }
        if include && !exclude {
            out.push(candidate);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn eval_git(
    g: &GitGenerator,
    ctx: &EvalContext<'_>,
    mode: &Mode,
    path: &str,
) -> Result<Vec<Params>, AppSetError> {
    let repo = ctx.git.repo(&g.repo_url, &g.revision).map_err(|m| {
        AppSetError::new(
            format!("{path}.repoURL"),
            format!("repository {} at {:?}: {m}", g.repo_url, g.revision),
        )
    })?;
    let prefix = g.path_param_prefix.as_str();
    let mut out = Vec::new();
    if !g.directories.is_empty() {
        let items: Vec<(String, bool)> = g
            .directories
            .iter()
            .map(|d| (d.path.clone(), d.exclude))
            .collect();
        for dir in select(
            repo.directories(),
            &items,
            false,
            &format!("{path}.directories"),
        )? {
            let mut params = Params::new();
            path_params(&mut params, mode, prefix, &dir, None);
            add_values(&mut params, &g.values, mode, path)?;
            out.push(params);
        }
    } else if !g.files.is_empty() {
        let items: Vec<(String, bool)> = g
            .files
            .iter()
            .map(|f| (f.path.clone(), f.exclude))
            .collect();
        for file in select(repo.files(), &items, true, &format!("{path}.files"))? {
            let doc = repo.read_document(&file).map_err(|m| {
                AppSetError::new(format!("{path}.files"), format!("reading {file}: {m}"))
            })?;
            let objects = match doc {
                Value::Object(o) => vec![o],
                // An empty file is one empty object, as Argo CD reads it.
                Value::Null => vec![serde_json::Map::new()],
                Value::Array(items) => {
                    let mut objects = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        match item {
                            Value::Object(o) => objects.push(o),
                            _ => {
                                return Err(AppSetError::new(
                                    format!("{path}.files"),
                                    format!("{file}: item {i} is not an object"),
                                ));
                            }
                        }
                    }
                    objects
                }
                _ => {
                    return Err(AppSetError::new(
                        format!("{path}.files"),
                        format!("{file}: expected an object or a list of objects"),
                    ));
                }
            };
            let dir = dir_name(&file);
            for object in objects {
                let mut params = if mode.is_go() {
                    object
                } else {
                    flatten_params(&object)
                };
                path_params(&mut params, mode, prefix, dir, Some(&file));
                add_values(&mut params, &g.values, mode, path)?;
                out.push(params);
            }
        }
    } else {
        return Err(AppSetError::new(
            path,
            "one of directories or files is required",
        ));
    }
    Ok(out)
}

fn eval_merge(
    m: &MergeGenerator,
    ctx: &EvalContext<'_>,
    mode: &Mode,
    path: &str,
    depth: usize,
) -> Result<Vec<Params>, AppSetError> {
    if depth >= 2 {
        return Err(AppSetError::new(
            path,
            "combination generators nest at most two levels",
        ));
    }
    if m.generators.len() < 2 {
        return Err(AppSetError::new(
            format!("{path}.generators"),
            "a merge generator takes at least two generators",
        ));
    }
    if m.merge_keys.is_empty() {
        return Err(AppSetError::new(
            format!("{path}.mergeKeys"),
            "at least one merge key is required",
        ));
    }
    let mut keys = m.merge_keys.clone();
    keys.sort();
    keys.dedup();
    // A set's key: its values of the merge keys, looked up at the top level (as Argo CD does; nested keys are not followed with Go templates).
    let key_of = |p: &Params| -> String {
        let key: serde_json::Map<String, Value> = keys
            .iter()
            .map(|k| (k.clone(), p.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        serde_json::to_string(&key).unwrap_or_default()
    };
    let by_key = |sets: Vec<Params>, at: &str| -> Result<BTreeMap<String, Params>, AppSetError> {
        let mut map = BTreeMap::new();
        for set in sets {
            let key = key_of(&set);
            if map.contains_key(&key) {
                return Err(AppSetError::new(
                    at,
                    format!("two parameter sets share the merge key values {key}"),
                ));
            }
            map.insert(key, set);
        }
        Ok(map)
    };
    let mut base = None;
    for (i, child) in m.generators.iter().enumerate() {
        let at = format!("{path}.generators[{i}]");
        let sets = by_key(eval_generator(child, ctx, mode, &at, depth + 1)?, &at)?;
        match base.as_mut() {
            None => base = Some(sets),
            Some(base) => {
                for (key, set) in base.iter_mut() {
                    if let Some(over) = sets.get(key) {
                        if mode.is_go() {
                            deep_merge(set, over);
                        } else {
                            set.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
                        }
                    }
                }
            }
        }
    }
    Ok(base.map(|b| b.into_values().collect()).unwrap_or_default())
}
