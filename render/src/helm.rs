//! kustomize's Helm chart inflation generator (`helmCharts`, `helmGlobals`): parsing, chart location, values merging; the chart itself is rendered by a caller-supplied [`HelmChartInflator`] (this crate runs no program).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{RenderError, Result};
use crate::loader::{RepoRoot, relative_to};

/// At most this many `helmCharts` entries per kustomization.
const MAX_CHARTS: usize = 64;
/// At most this many bytes per values file read for a chart.
const MAX_VALUES_BYTES: u64 = 8 << 20;
/// kustomize's `types.HelmDefaultHome`.
const DEFAULT_CHART_HOME: &str = "charts";
/// The release name `helm template --generate-name` gives (Helm v4), which kustomize asks for without a
/// `releaseName`.
pub const DEFAULT_RELEASE_NAME: &str = "release-name";

/// Renders one Helm chart for a kustomization's `helmCharts` entry (`helm template`), implemented outside this
/// crate (the spoke with `edgecd-helm`). Called from the (blocking) render.
pub trait HelmChartInflator: Send + Sync {
    /// The chart's objects, in helm's output order; the error is the cause (helm's message, a fetch failure),
    /// which the render wraps with the kustomization file and the entry.
    fn inflate(&self, chart: &ChartInflation) -> std::result::Result<Vec<Value>, String>;

    /// The `values.yaml` text of a chart of a repository ([`ChartLocation::Repository`]; `None` when it has
    /// none), which kustomize merges with `valuesInline` when the entry names no `valuesFile`.
    fn repository_chart_values(
        &self,
        chart: &ChartLocation,
    ) -> std::result::Result<Option<String>, String>;
}

/// Where the chart of a `helmCharts` entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartLocation {
    /// A chart directory inside the repository (`<chartHome>/<name>`, or `<chartHome>/<name>-<version>/<name>`
    /// with `repo` and `version`).
    Directory(PathBuf),
    /// A chart of an HTTP(S) chart repository, or of an OCI registry (`oci://host/path`: the chart is
    /// `path/<name>`, as kustomize pulls `<repo>/<name>`), to be fetched by the inflator (never into the
    /// checkout).
    Repository {
        url: String,
        name: String,
        /// Empty: the latest.
        version: String,
    },
}

/// One chart to inflate, with everything kustomize would hand `helm template`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartInflation {
    /// The kustomization file listing the entry.
    pub kustomization: PathBuf,
    /// The repository root every file stays in.
    pub repo_root: PathBuf,
    pub chart: ChartLocation,
    /// `releaseName`, else [`DEFAULT_RELEASE_NAME`].
    pub release_name: String,
    /// `namespace`; empty leaves helm's default (`default`).
    pub namespace: String,
    /// The values helm gets (`valuesFile` or the chart's `values.yaml`, merged with `valuesInline` as
    /// `valuesMerge` says, then each of `additionalValuesFiles` as helm merges `-f` files) as JSON text; `None`
    /// when only the chart's own values apply.
    pub values: Option<String>,
    pub include_crds: bool,
    pub skip_tests: bool,
    /// `--api-versions`; empty: the inflator's (cluster's) own.
    pub api_versions: Vec<String>,
    /// `--kube-version`; empty: the inflator's (cluster's) own.
    pub kube_version: String,
}

/// `valuesMerge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ValuesMerge {
    /// `valuesInline` wins over the values file (kustomize's default).
    #[default]
    Override,
    /// The values file wins over `valuesInline`.
    Merge,
    /// `valuesInline` alone.
    Replace,
}

/// One parsed `helmCharts` entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct HelmChart {
    pub name: String,
    pub repo: String,
    pub version: String,
    pub release_name: String,
    pub namespace: String,
    pub values_file: String,
    pub values_inline: Map<String, Value>,
    pub values_merge: ValuesMerge,
    pub additional_values_files: Vec<String>,
    pub include_crds: bool,
    pub skip_tests: bool,
    pub skip_hooks: bool,
    pub api_versions: Vec<String>,
    pub kube_version: String,
}

/// `helmGlobals`.
#[derive(Debug, Clone, Default)]
pub(crate) struct HelmGlobals {
    pub chart_home: String,
}

const CHART_FIELDS: &[&str] = &[
    "name",
    "repo",
    "version",
    "releaseName",
    "namespace",
    "nameTemplate",
    "valuesFile",
    "valuesInline",
    "valuesMerge",
    "additionalValuesFiles",
    "includeCRDs",
    "skipTests",
    "skipHooks",
    "apiVersions",
    "kubeVersion",
    "description",
    "skipSchemaValidation",
    "debug",
];

fn err(file: &Path, message: String) -> RenderError {
    RenderError::invalid(file, message)
}

fn string(file: &Path, at: &str, value: Option<&Value>) -> Result<String> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(_) => Err(err(file, format!("{at} must be a string"))),
    }
}

fn boolean(file: &Path, at: &str, value: Option<&Value>) -> Result<bool> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(file, format!("{at} must be true or false"))),
    }
}

fn strings(file: &Path, at: &str, value: Option<&Value>) -> Result<Vec<String>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| string(file, &format!("{at}[{i}]"), Some(v)))
            .collect(),
        Some(_) => Err(err(file, format!("{at} must be a list of strings"))),
    }
}

/// Parses `helmCharts` and `helmGlobals` of the kustomization `file`.
pub(crate) fn parse(
    map: &Map<String, Value>,
    file: &Path,
) -> Result<(Vec<HelmChart>, HelmGlobals)> {
    let globals = match map.get("helmGlobals") {
        None | Some(Value::Null) => HelmGlobals::default(),
        Some(Value::Object(g)) => {
            for key in g.keys() {
                if key != "chartHome" && key != "configHome" {
                    return Err(err(file, format!("unknown field '{key}' in helmGlobals")));
                }
            }
            HelmGlobals {
                chart_home: string(file, "helmGlobals.chartHome", g.get("chartHome"))?,
            }
        }
        Some(_) => return Err(err(file, "helmGlobals must be a mapping".into())),
    };
    let entries = match map.get("helmCharts") {
        None | Some(Value::Null) => return Ok((Vec::new(), globals)),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(err(file, "helmCharts must be a list".into())),
    };
    if entries.len() > MAX_CHARTS {
        return Err(err(
            file,
            format!(
                "helmCharts has {} entries; at most {MAX_CHARTS} are inflated",
                entries.len()
            ),
        ));
    }
    let mut charts = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("helmCharts[{i}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| err(file, format!("{at}: entries must be mappings")))?;
        for key in entry.keys() {
            if !CHART_FIELDS.contains(&key.as_str()) {
                return Err(err(file, format!("unknown field '{key}' in {at}")));
            }
        }
        let field = |key: &str| format!("{at}.{key}");
        let name = string(file, &field("name"), entry.get("name"))?;
        if name.is_empty() {
            return Err(err(file, format!("{at}: chart name cannot be empty")));
        }
        let at = format!("{at} ({name})");
        if name.contains('/') || name.contains('\\') || name == "." || name == ".." {
            return Err(err(
                file,
                format!("{at}: a chart name is one path segment (no '/', not '.' or '..')"),
            ));
        }
        if !string(file, &field("nameTemplate"), entry.get("nameTemplate"))?.is_empty() {
            return Err(err(
                file,
                format!(
                    "{at}: nameTemplate is not supported yet (Helm's deprecated --name-template); set releaseName"
                ),
            ));
        }
        let values_merge = match string(file, &field("valuesMerge"), entry.get("valuesMerge"))?
            .as_str()
        {
            "" | "override" => ValuesMerge::Override,
            "merge" => ValuesMerge::Merge,
            "replace" => ValuesMerge::Replace,
            other => {
                return Err(err(
                    file,
                    format!(
                        "{at}: valuesMerge must be one of [merge override replace], not {other:?}"
                    ),
                ));
            }
        };
        let values_inline = match entry.get("valuesInline") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(values)) => values.clone(),
            Some(_) => {
                return Err(err(file, format!("{at}: valuesInline must be a mapping")));
            }
        };
        charts.push(HelmChart {
            repo: string(file, &field("repo"), entry.get("repo"))?,
            version: string(file, &field("version"), entry.get("version"))?,
            release_name: string(file, &field("releaseName"), entry.get("releaseName"))?,
            namespace: string(file, &field("namespace"), entry.get("namespace"))?,
            values_file: string(file, &field("valuesFile"), entry.get("valuesFile"))?,
            values_inline,
            values_merge,
            additional_values_files: strings(
                file,
                &field("additionalValuesFiles"),
                entry.get("additionalValuesFiles"),
            )?,
            include_crds: boolean(file, &field("includeCRDs"), entry.get("includeCRDs"))?,
            skip_tests: boolean(file, &field("skipTests"), entry.get("skipTests"))?,
            skip_hooks: boolean(file, &field("skipHooks"), entry.get("skipHooks"))?,
            api_versions: strings(file, &field("apiVersions"), entry.get("apiVersions"))?,
            kube_version: string(file, &field("kubeVersion"), entry.get("kubeVersion"))?,
            name,
        });
    }
    Ok((charts, globals))
}

/// The label of entry `index` in messages: `helmCharts[0] (web)`.
pub(crate) fn entry_label(index: usize, chart: &HelmChart) -> String {
    format!("helmCharts[{index}] ({})", chart.name)
}

/// Inflates entry `index` of the kustomization `file` in `dir`: locates the chart, reads and merges the values
/// (kustomize's rule: values files in or below the kustomization directory), asks `inflator`, and drops hooks
/// with `skipHooks` (what `helm template --no-hooks` leaves out).
pub(crate) fn inflate(
    repo: &RepoRoot,
    (dir, file): (&Path, &Path),
    (index, chart): (usize, &HelmChart),
    globals: &HelmGlobals,
    inflator: Option<&dyn HelmChartInflator>,
) -> Result<Vec<Value>> {
    let label = entry_label(index, chart);
    let shown = |path: &Path| relative_to(path, repo.root());
    let fail = |message: String| RenderError::transform(file, format!("{label}: {message}"));
    let Some(inflator) = inflator else {
        return Err(fail(
            "inflating a Helm chart needs the helm program, which this renderer has none of (the spoke \
             inflates helmCharts; the hub does not render app-of-apps parents that use them)"
                .into(),
        ));
    };
    let chart_home_text = if globals.chart_home.is_empty() {
        DEFAULT_CHART_HOME
    } else {
        &globals.chart_home
    };
    let chart_home = crate::loader::normalize(&dir.join(chart_home_text));
    // The repository root is canonical: the escape check starts from the directory's real path.
    let real_dir = dir.canonicalize().map_err(|source| RenderError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !crate::loader::normalize(&real_dir.join(chart_home_text)).starts_with(repo.root()) {
        return Err(fail(format!(
            "helmGlobals.chartHome {chart_home_text:?} leaves the repository"
        )));
    }
    let versioned = if !chart.version.is_empty() && !chart.repo.is_empty() {
        chart_home.join(format!("{}-{}", chart.name, chart.version))
    } else {
        chart_home.clone()
    };
    let chart_dir = versioned.join(&chart.name);
    let location = if chart_dir.is_dir() {
        repo.check(&chart_dir).map_err(|e| fail(e.to_string()))?;
        ChartLocation::Directory(chart_dir.clone())
    } else if chart.repo.is_empty() {
        return Err(fail(format!(
            "no repo specified for pull, no chart found at '{}'",
            shown(&chart_dir)
        )));
    } else if ["https://", "http://", "oci://"]
        .iter()
        .any(|scheme| chart.repo.starts_with(scheme))
    {
        ChartLocation::Repository {
            url: chart.repo.clone(),
            name: chart.name.clone(),
            version: chart.version.clone(),
        }
    } else {
        return Err(fail(format!(
            "repo {:?} is neither a chart repository (https://…) nor an OCI registry (oci://…)",
            chart.repo
        )));
    };
    let read_values = |relative: &str, what: &str| -> Result<Value> {
        if relative.contains("://") {
            return Err(fail(format!(
                "{what} {relative:?}: remote values files are refused; edgecd renders local files only"
            )));
        }
        let path = repo
            .resolve(dir, relative, dir)
            .map_err(|e| fail(format!("{what}: {e}")))?;
        read_yaml_map(repo, &path).map_err(|e| fail(format!("{what}: {e}")))
    };
    // The base values: `valuesFile`, else the local chart's own `values.yaml` (kustomize reads it too).
    let base = if !chart.values_file.is_empty() {
        Some(read_values(&chart.values_file, "valuesFile")?)
    } else {
        match &location {
            ChartLocation::Directory(chart_dir) => {
                let relative = relative_to(&chart_dir.join("values.yaml"), dir);
                Some(read_values(&relative, "the chart's values.yaml")?)
            }
            // Read only when there are inline values to merge it with (helm applies it anyway).
            ChartLocation::Repository { .. } if chart.values_inline.is_empty() => None,
            ChartLocation::Repository { .. } => {
                let text = inflator
                    .repository_chart_values(&location)
                    .map_err(&fail)?
                    .ok_or_else(|| {
                        fail("the chart has no values.yaml to merge valuesInline with".into())
                    })?;
                if text.len() as u64 > MAX_VALUES_BYTES {
                    return Err(fail(format!(
                        "the chart's values.yaml has {} bytes; at most {MAX_VALUES_BYTES} are read",
                        text.len()
                    )));
                }
                let value = crate::yaml::load_one_within(&text, repo.yaml_budget())
                    .map_err(|e| fail(format!("the chart's values.yaml: {e}")))?;
                match value {
                    Value::Null => Some(Value::Object(Map::new())),
                    Value::Object(_) => Some(value),
                    _ => {
                        return Err(fail(
                            "the chart's values.yaml: values must be a mapping".into(),
                        ));
                    }
                }
            }
        }
    };
    let mut values = if chart.values_inline.is_empty() {
        base.unwrap_or(Value::Null)
    } else {
        let inline = Value::Object(chart.values_inline.clone());
        match (chart.values_merge, base) {
            (ValuesMerge::Replace, _) | (_, None) => inline,
            (ValuesMerge::Override, Some(mut file_values)) => {
                merge_ignoring_nulls(&mut file_values, &inline);
                file_values
            }
            (ValuesMerge::Merge, Some(file_values)) => {
                let mut merged = inline;
                merge_ignoring_nulls(&mut merged, &file_values);
                merged
            }
        }
    };
    for (i, relative) in chart.additional_values_files.iter().enumerate() {
        let added = read_values(relative, &format!("additionalValuesFiles[{i}]"))?;
        if values.is_null() {
            values = Value::Object(Map::new());
        }
        helm_merge(&mut values, &added);
    }
    let request = ChartInflation {
        kustomization: file.to_path_buf(),
        repo_root: repo.root().to_path_buf(),
        chart: location,
        release_name: if chart.release_name.is_empty() {
            DEFAULT_RELEASE_NAME.into()
        } else {
            chart.release_name.clone()
        },
        namespace: chart.namespace.clone(),
        values: (!values.is_null()).then(|| values.to_string()),
        include_crds: chart.include_crds,
        skip_tests: chart.skip_tests,
        api_versions: chart.api_versions.clone(),
        kube_version: chart.kube_version.clone(),
    };
    let mut objects = inflator.inflate(&request).map_err(fail)?;
    if chart.skip_hooks {
        objects.retain(|object| {
            object
                .pointer("/metadata/annotations/helm.sh~1hook")
                .is_none()
        });
    }
    Ok(objects)
}

/// A values file: a YAML mapping (empty or null is none), bounded in size.
fn read_yaml_map(repo: &RepoRoot, path: &Path) -> Result<Value> {
    let size = std::fs::metadata(path)
        .map_err(|source| RenderError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size > MAX_VALUES_BYTES {
        return Err(RenderError::invalid(
            path,
            format!("values file of {size} bytes; at most {MAX_VALUES_BYTES} are read"),
        ));
    }
    let text = repo.read_text(path)?;
    let value = crate::yaml::load_one_within(&text, repo.yaml_budget()).map_err(|source| {
        RenderError::Yaml {
            path: path.to_path_buf(),
            source,
        }
    })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(RenderError::invalid(path, "values must be a mapping")),
    }
}

/// kyaml's `merge2.Merge(src, dest)` as kustomize's `valuesMerge` uses it: maps merge key by key, `src` wins
/// for anything else (lists are replaced), and a null in `src` leaves `dest`'s value.
pub(crate) fn merge_ignoring_nulls(dest: &mut Value, src: &Value) {
    let (Value::Object(dest_map), Value::Object(src_map)) = (&mut *dest, src) else {
        if !src.is_null() {
            *dest = src.clone();
        }
        return;
    };
    for (key, value) in src_map {
        if value.is_null() {
            continue;
        }
        match dest_map.get_mut(key) {
            Some(existing) if existing.is_object() && value.is_object() => {
                merge_ignoring_nulls(existing, value);
            }
            _ => {
                dest_map.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Helm's merge of a later `-f` file over the earlier ones: maps merge key by key, anything else (null
/// included, which later removes a chart default) replaces.
pub(crate) fn helm_merge(dest: &mut Value, src: &Value) {
    let (Value::Object(dest_map), Value::Object(src_map)) = (&mut *dest, src) else {
        *dest = src.clone();
        return;
    };
    for (key, value) in src_map {
        match dest_map.get_mut(key) {
            Some(existing) if existing.is_object() && value.is_object() => {
                helm_merge(existing, value);
            }
            _ => {
                dest_map.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_merge_matches_kustomize() {
        // The results kubectl kustomize (v5.7.1) gave for the same values (see docs/render.md).
        let file = json!({"a": 1, "m": {"x": 1, "w": 2, "z": {"q": 1}}, "l": [1, 2], "d": 5, "f": {"g": 1}});
        let inline =
            json!({"a": 2, "m": {"w": 3, "z": {"r": 2}}, "l": [3], "d": null, "f": null, "e": 1});
        let mut over = file.clone();
        merge_ignoring_nulls(&mut over, &inline);
        assert_eq!(
            over,
            json!({"a": 2, "m": {"x": 1, "w": 3, "z": {"q": 1, "r": 2}}, "l": [3], "d": 5, "f": {"g": 1}, "e": 1})
        );
        let mut merged = inline.clone();
        merge_ignoring_nulls(&mut merged, &file);
        assert_eq!(
            merged,
            json!({"a": 1, "m": {"x": 1, "w": 2, "z": {"q": 1, "r": 2}}, "l": [1, 2], "d": 5, "f": {"g": 1}, "e": 1})
        );
        let mut helm = json!({"a": 1, "m": {"x": 1}});
        helm_merge(&mut helm, &json!({"a": null, "m": {"y": 2}}));
        assert_eq!(helm, json!({"a": null, "m": {"x": 1, "y": 2}}));
    }
}
