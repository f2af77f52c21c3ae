//! Evaluation: generators produce parameter sets, the template is rendered once per set into a checked Application.

use std::collections::BTreeMap;

use serde_json::Value;

use super::template::{flatten_params, render_str, render_value, sanitize_name};
use super::{
    AppSetError, ApplicationSetSpec, ClustersGenerator, EvalContext, GeneratedApp, Generator,
    GitGenerator, ListGenerator, MergeGenerator, Params, glob_match,
};
use crate::app::ApplicationSpec;
use crate::argo_spec::{check_application_spec, normalize_application_spec};
use crate::names::AppName;

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
    if spec.go_template {
        return Err(AppSetError::new(
            "spec.goTemplate",
            "Go templates are not supported",
        ));
    }
    let mut apps: BTreeMap<String, GeneratedApp> = BTreeMap::new();
    let mut twice: BTreeMap<String, Vec<Params>> = BTreeMap::new();
    for (i, g) in spec.generators.iter().enumerate() {
        let path = format!("spec.generators[{i}]");
        for params in eval_generator(g, ctx, &path, 0)? {
            let app = render_app(spec, params)?;
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

fn render_app(spec: &ApplicationSetSpec, params: Params) -> Result<GeneratedApp, AppSetError> {
    let meta = &spec.template.metadata;
    let render = |text: &str, path: &str| -> Result<String, AppSetError> {
        render_str(text, &params).map_err(|m| AppSetError::new(path, m))
    };
    let name = render(&meta.name, "spec.template.metadata.name")?;
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
    let mut labels = BTreeMap::new();
    for (k, v) in &meta.labels {
        let at = format!("spec.template.metadata.labels.{k}");
        labels.insert(render(k, &at)?, render(v, &at)?);
    }
    let mut annotations = BTreeMap::new();
    for (k, v) in &meta.annotations {
        let at = format!("spec.template.metadata.annotations.{k}");
        annotations.insert(render(k, &at)?, render(v, &at)?);
    }
    let mut rendered = render_value(&spec.template.spec, &params, "spec.template.spec")?;
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

/// Renders a generator's string fields with `params` (matrix: the second child sees the first's params).
fn interpolate(g: &Generator, params: &Params, path: &str) -> Result<Generator, AppSetError> {
    let raw = serde_json::to_value(g).map_err(|e| AppSetError::new(path, e.to_string()))?;
    let rendered = render_value(&raw, params, path)?;
    serde_json::from_value(rendered).map_err(|e| AppSetError::new(path, e.to_string()))
}

fn eval_generator(
    g: &Generator,
    ctx: &EvalContext<'_>,
    path: &str,
    depth: usize,
) -> Result<Vec<Params>, AppSetError> {
    match g {
        Generator::List(list) => eval_list(list, &format!("{path}.list")),
        Generator::Clusters(c) => eval_clusters(c, ctx, &format!("{path}.clusters")),
        Generator::Git(git) => eval_git(git, ctx, &format!("{path}.git")),
        Generator::Matrix(m) => {
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
            for a in eval_generator(first, ctx, &first_path, depth + 1)? {
                let child = interpolate(second, &a, &second_path)?;
                for b in eval_generator(&child, ctx, &second_path, depth + 1)? {
                    let mut combined = a.clone();
                    for (k, v) in b {
                        match combined.get(&k) {
                            Some(existing) if *existing != v => {
                                return Err(AppSetError::new(
                                    &at,
                                    format!(
                                        "both child generators set parameter {k:?} with different values ({existing:?} and {v:?})"
                                    ),
                                ));
                            }
                            _ => {
                                combined.insert(k, v);
                            }
                        }
                    }
                    out.push(combined);
                }
            }
            Ok(out)
        }
        Generator::Merge(m) => eval_merge(m, ctx, &format!("{path}.merge"), depth),
    }
}

fn add_values(
    params: &mut Params,
    values: &BTreeMap<String, String>,
    path: &str,
) -> Result<(), AppSetError> {
    let mut rendered = Vec::with_capacity(values.len());
    for (k, v) in values {
        let value =
            render_str(v, params).map_err(|m| AppSetError::new(format!("{path}.values.{k}"), m))?;
        rendered.push((format!("values.{k}"), value));
    }
    params.extend(rendered);
    Ok(())
}

fn eval_list(list: &ListGenerator, path: &str) -> Result<Vec<Params>, AppSetError> {
    let mut out = Vec::with_capacity(list.elements.len());
    for (i, element) in list.elements.iter().enumerate() {
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
    Ok(out)
}

fn eval_clusters(
    g: &ClustersGenerator,
    ctx: &EvalContext<'_>,
    path: &str,
) -> Result<Vec<Params>, AppSetError> {
    let mut out = Vec::new();
    for cluster in ctx.clusters {
        if !g.selector.matches(&cluster.labels) {
            continue;
        }
        let mut params = Params::new();
        params.insert("name".into(), cluster.name.clone());
        params.insert("nameNormalized".into(), sanitize_name(&cluster.name));
        params.insert("server".into(), cluster.server.clone());
        for (k, v) in &cluster.labels {
            params.insert(format!("metadata.labels.{k}"), v.clone());
        }
        for (k, v) in &cluster.annotations {
            params.insert(format!("metadata.annotations.{k}"), v.clone());
        }
        add_values(&mut params, &g.values, path)?;
        out.push(params);
    }
    Ok(out)
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

/// `path`, `path.basename`, `path.basenameNormalized`, `path[n]` for a directory, under `prefix`.
fn path_params(params: &mut Params, prefix: &str, dir: &str) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    params.insert(key("path"), dir.to_owned());
    params.insert(key("path.basename"), base_name(dir).to_owned());
    params.insert(
        key("path.basenameNormalized"),
        sanitize_name(base_name(dir)),
    );
    for (i, seg) in dir.split('/').enumerate() {
        if !seg.is_empty() {
            params.insert(key(&format!("path[{i}]")), seg.to_owned());
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
            path_params(&mut params, prefix, &dir);
            add_values(&mut params, &g.values, path)?;
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
                let mut params = flatten_params(&object);
                path_params(&mut params, prefix, dir);
                let key = |k: &str| {
                    if prefix.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{prefix}.{k}")
                    }
                };
                params.insert(key("path.filename"), base_name(&file).to_owned());
                params.insert(
                    key("path.filenameNormalized"),
                    sanitize_name(base_name(&file)),
                );
                add_values(&mut params, &g.values, path)?;
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
    let key_of =
        |p: &Params| -> Vec<Option<String>> { keys.iter().map(|k| p.get(k).cloned()).collect() };
    let by_key = |sets: Vec<Params>,
                  at: &str|
     -> Result<BTreeMap<Vec<Option<String>>, Params>, AppSetError> {
        let mut map = BTreeMap::new();
        for set in sets {
            let key = key_of(&set);
            if map.contains_key(&key) {
                return Err(AppSetError::new(
                    at,
                    format!(
                        "two parameter sets share the merge key values {}",
                        serde_json::to_string(&key).unwrap_or_default()
                    ),
                ));
            }
            map.insert(key, set);
        }
        Ok(map)
    };
    let mut base = None;
    for (i, child) in m.generators.iter().enumerate() {
        let at = format!("{path}.generators[{i}]");
        let sets = by_key(eval_generator(child, ctx, &at, depth + 1)?, &at)?;
        match base.as_mut() {
            None => base = Some(sets),
            Some(base) => {
                for (key, set) in base.iter_mut() {
                    if let Some(over) = sets.get(key) {
                        set.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
            }
        }
    }
    Ok(base.map(|b| b.into_values().collect()).unwrap_or_default())
}
