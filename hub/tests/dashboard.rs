//! The Grafana dashboard `charts/dashboards/edgecd-fleet.json` stays true to the code: every metric its queries name is a sample the hub or the spoke exports (the hub's read from its rendered `/metrics` text, the spoke's from the registrations in `spoke/src/metrics.rs`), every panel has its own id, and every panel, query and variable reads the `${datasource}` variable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgecd_hub::link::LinkCounters;
use edgecd_hub::metrics::Metrics;
use serde_json::{Value, json};

/// Where the dashboard lives, from the repository root.
const DASHBOARD: &str = "charts/dashboards/edgecd-fleet.json";

/// The data source of every panel and query: the dashboard's template variable.
const DATASOURCE: &str = "${datasource}";

/// Variables Grafana defines itself.
const GRAFANA_VARIABLES: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the hub crate lies in the workspace")
        .to_path_buf()
}

fn read(path: &str) -> String {
    let path = repo_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every panel, the panels inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"]
        .as_array()
        .expect("the dashboard has panels")
    {
        out.push(panel);
        if let Some(nested) = panel.get("panels").and_then(Value::as_array) {
            out.extend(nested);
        }
    }
    out
}

fn title(panel: &Value) -> &str {
    panel["title"].as_str().unwrap_or("(untitled)")
}

/// The template variables.
fn variables(dashboard: &Value) -> &Vec<Value> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("the dashboard has templating.list")
}

/// Every PromQL expression, with where it is: the panels' queries and the query variables'.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {:?}: a query without expr", title(panel)));
            out.push((format!("panel {:?}", title(panel)), expr.to_owned()));
        }
    }
    for variable in variables(dashboard) {
        if variable["type"] == "query" {
            let query = match &variable["query"] {
                Value::String(query) => query.as_str(),
                query => query["query"]
                    .as_str()
                    .expect("a query variable has a query"),
            };
            out.push((format!("variable {}", variable["name"]), query.to_owned()));
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The edgecd metric names (`edgecd_…`) an expression names, as written: a histogram's
/// `_bucket`, `_sum` and `_count`, a counter's `_total`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(found) = expr[from..].find("edgecd_") {
        let start = from + found;
        let end = expr[start..]
            .find(|c: char| !is_name_char(c))
            .map_or(expr.len(), |n| start + n);
        if !expr[..start].ends_with(is_name_char) {
            names.insert(expr[start..end].to_owned());
        }
        from = end;
    }
    names
}

/// What the dashboard's queries name that `exported` lacks, one line each.
fn unknown_metrics(dashboard: &Value, exported: &BTreeSet<String>) -> Vec<String> {
    let mut unknown = Vec::new();
    for (place, expr) in expressions(dashboard) {
        for name in metric_names(&expr) {
            if !exported.contains(&name) {
                unknown.push(format!("{place}: {name}"));
            }
        }
    }
    unknown
}

/// The sample names of an exposition text.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.split(['{', ' '])
                .next()
                .expect("split yields one piece at least")
                .to_owned()
        })
        .collect()
}

/// The hub's samples, rendered by its own registry.
fn hub_samples() -> BTreeSet<String> {
    let metrics = Metrics::new(&LinkCounters::default());
    // A labelled family shows samples once it has a child.
    metrics.observe_rpc("ListApps", tonic::Code::Ok, Duration::from_millis(3));
    sample_names(&metrics.encode())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The kind a type or expression text names, if any.
    fn named_in(text: &str) -> Option<Self> {
        if text.contains("Histogram") {
            Some(Self::Histogram)
        } else if text.contains("Counter") {
            Some(Self::Counter)
        } else if text.contains("Gauge") {
            Some(Self::Gauge)
        } else {
            None
        }
    }

    /// The sample names prometheus-client writes for a metric of this kind called `base`.
    fn samples(self, base: &str) -> Vec<String> {
        match self {
            Self::Counter => vec![format!("{base}_total")],
            Self::Gauge => vec![base.to_owned()],
            Self::Histogram => ["bucket", "sum", "count"]
                .iter()
                .map(|suffix| format!("{base}_{suffix}"))
                .collect(),
        }
    }
}

/// The arguments of every call of `callee` (which ends with `(`) in `source`, split at the
/// top-level commas; string literals are kept whole.
fn calls(source: &str, callee: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = source[from..].find(callee) {
        let start = from + found;
        from = start + callee.len();
        if callee.starts_with(is_name_char) && source[..start].ends_with(is_name_char) {
            continue; // a longer name ending in `callee`
        }
        let mut args = vec![String::new()];
        let mut depth = 0_usize;
        let mut in_string = false;
        let mut escaped = false;
        for c in source[from..].chars() {
            if in_string {
                args.last_mut().unwrap().push(c);
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '(' | '[' | '{' => depth += 1,
                ')' if depth == 0 => break,
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    args.push(String::new());
                    continue;
                }
                _ => {}
            }
            args.last_mut().unwrap().push(c);
        }
        out.push(
            args.into_iter()
                .map(|arg| arg.trim().to_owned())
                .filter(|arg| !arg.is_empty())
                .collect(),
        );
    }
    out
}

/// The kind of the field or binding `name`, from its type declarations (`name: Type`) in `types`.
fn declared_kind(name: &str, types: &str) -> Kind {
    let pattern = format!("{name}: ");
    let mut kinds = BTreeSet::new();
    let mut from = 0;
    while let Some(found) = types[from..].find(&pattern) {
        let start = from + found;
        from = start + pattern.len();
        if types[..start].ends_with(is_name_char) {
            continue;
        }
        let declaration = types[from..].lines().next().unwrap_or_default();
        kinds.extend(Kind::named_in(declaration));
    }
    match kinds.iter().collect::<Vec<_>>()[..] {
        [kind] => *kind,
        _ => panic!(
            "cannot tell the kind of metric `{name}` from its declarations (found {kinds:?}); \
             teach this test how the metrics are declared now"
        ),
    }
}

/// prometheus-client's suffix for a `Unit::…` variant.
fn unit_suffix(args: &[String]) -> Option<&'static str> {
    let arg = args.iter().find(|arg| arg.contains("Unit::"))?;
    let variant = arg.rsplit("Unit::").next().unwrap_or_default();
    Some(match variant {
        "Amperes" => "amperes",
        "Bytes" => "bytes",
        "Joules" => "joules",
        "Meters" => "meters",
        "Ratios" => "ratios",
        "Seconds" => "seconds",
        "Volts" => "volts",
        other => panic!("unit {other} is not known to this test"),
    })
}

/// The sample names the metrics registered in `source` (outside its tests) export under
/// `prefix`: `Registry::register`/`register_with_unit` calls (the kind from the registered
/// field's declaration in `types`), a collector's `encode_descriptor` calls (the kind from
/// their `MetricType`), and the spoke collector's `counter(…)`/`gauge(…)` helpers.
fn declared_samples(prefix: &str, source: &str, types: &str) -> BTreeSet<String> {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut samples = BTreeSet::new();
    for callee in [
        ".register(",
        ".register_with_unit(",
        "encode_descriptor(",
        "counter(",
        "gauge(",
    ] {
        for args in calls(source, callee) {
            // A definition (`fn counter(encoder: …, name: &str, …)`) or a call passing the
            // name through names no literal.
            let Some(name) = args
                .iter()
                .find_map(|arg| arg.strip_prefix('"')?.strip_suffix('"'))
            else {
                continue;
            };
            let kind = match callee {
                "counter(" => Kind::Counter,
                "gauge(" => Kind::Gauge,
                "encode_descriptor(" => args
                    .iter()
                    .find(|arg| arg.contains("MetricType::"))
                    .and_then(|arg| Kind::named_in(arg))
                    .unwrap_or_else(|| panic!("metric `{name}`: no MetricType in {args:?}")),
                _ => {
                    let metric = args.last().expect("a registration passes a metric");
                    let field = metric
                        .trim_end_matches(".clone()")
                        .rsplit('.')
                        .next()
                        .unwrap_or_default();
                    declared_kind(field, types)
                }
            };
            let mut base = format!("{prefix}_{name}");
            if let Some(unit) = unit_suffix(&args) {
                base = format!("{base}_{unit}");
            }
            samples.extend(kind.samples(&base));
        }
    }
    samples
}

/// The spoke's samples, from the registrations in its source.
fn spoke_samples() -> BTreeSet<String> {
    let source = read("spoke/src/metrics.rs");
    declared_samples(edgecd_spoke::metrics::PREFIX, &source, &source)
}

#[test]
fn the_source_reader_agrees_with_the_hubs_rendered_metrics() {
    // The spoke's metrics are read from its source (its registry needs a running engine); the
    // same reader applied to the hub's source must find exactly what the hub renders.
    let source = read("hub/src/metrics.rs");
    let types = format!("{source}\n{}", read("hub/src/link/mod.rs"));
    assert_eq!(
        declared_samples("edgecd_hub", &source, &types),
        hub_samples()
    );
}

#[test]
fn the_spokes_metrics_are_read_from_its_source() {
    let spoke = spoke_samples();
    // Names the spoke's process test (spoke/tests/run.rs) reads from a running spoke.
    for name in [
        "edgecd_spoke_apps_by_sync_status",
        "edgecd_spoke_apps_by_health",
        "edgecd_spoke_reconciles_total",
        "edgecd_spoke_sync_operations_total",
        "edgecd_spoke_git_fetches_total",
        "edgecd_spoke_reconcile_duration_seconds_count",
        "edgecd_spoke_render_cache_entries",
    ] {
        assert!(spoke.contains(name), "{name} not in {spoke:#?}");
    }
}

#[test]
fn every_metric_the_dashboard_names_is_exported() {
    let dashboard = dashboard();
    let hub = hub_samples();
    let spoke = spoke_samples();
    let named: BTreeSet<String> = expressions(&dashboard)
        .iter()
        .flat_map(|(_, expr)| metric_names(expr))
        .collect();
    assert!(named.iter().any(|name| hub.contains(name)), "{named:#?}");
    assert!(named.iter().any(|name| spoke.contains(name)), "{named:#?}");
    let exported: BTreeSet<String> = hub.union(&spoke).cloned().collect();
    let unknown = unknown_metrics(&dashboard, &exported);
    assert!(
        unknown.is_empty(),
        "{DASHBOARD} names metrics that neither the hub nor the spoke exports:\n{}\n\nexported:\n{exported:#?}",
        unknown.join("\n")
    );
}

#[test]
fn a_made_up_or_bare_histogram_name_is_caught() {
    let exported = hub_samples();
    let dashboard = json!({
        "panels": [
            {"title": "ok", "targets": [{"expr": "sum(rate(edgecd_hub_rpc_calls_total[5m]))"}]},
            {"title": "row", "type": "row", "panels": [
                {"title": "made up", "targets": [{"expr": "rate(edgecd_hub_made_up_total[5m])"}]}
            ]},
            {"title": "bare histogram", "targets": [{"expr": "rate(edgecd_hub_rpc_duration_seconds[5m])"}]},
            {"title": "no _total", "targets": [{"expr": "rate(edgecd_hub_rpc_calls[5m])"}]}
        ],
        "templating": {"list": [
            {"name": "job", "type": "query", "query": "label_values(edgecd_hub_nope, job)"}
        ]}
    });
    assert_eq!(
        unknown_metrics(&dashboard, &exported),
        [
            "panel \"made up\": edgecd_hub_made_up_total",
            "panel \"bare histogram\": edgecd_hub_rpc_duration_seconds",
            "panel \"no _total\": edgecd_hub_rpc_calls",
            "variable \"job\": edgecd_hub_nope",
        ]
    );
}

#[test]
fn panels_have_unique_ids_and_read_the_datasource_variable() {
    let dashboard = dashboard();
    assert_eq!(dashboard["schemaVersion"], 39);
    let datasource = variables(&dashboard)
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` template variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");

    let panels = panels(&dashboard);
    assert!(panels.len() > 3, "{} panels", panels.len());
    let mut ids = BTreeSet::new();
    for panel in &panels {
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel {:?} has no numeric id", title(panel)));
        assert!(ids.insert(id), "panel {:?} repeats id {id}", title(panel));
        assert_eq!(
            panel["datasource"]["uid"],
            DATASOURCE,
            "panel {:?}",
            title(panel)
        );
        assert_eq!(
            panel["datasource"]["type"],
            "prometheus",
            "panel {:?}",
            title(panel)
        );
        for target in panel
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert_eq!(
                target["datasource"]["uid"],
                DATASOURCE,
                "a query of panel {:?}",
                title(panel)
            );
        }
    }
    for variable in variables(&dashboard) {
        if variable["type"] == "query" {
            assert_eq!(
                variable["datasource"]["uid"], DATASOURCE,
                "variable {}",
                variable["name"]
            );
        }
    }
}

#[test]
fn queries_use_only_defined_variables() {
    let dashboard = dashboard();
    let defined: BTreeSet<&str> = variables(&dashboard)
        .iter()
        .filter_map(|v| v["name"].as_str())
        .chain(GRAFANA_VARIABLES.iter().copied())
        .collect();
    for (place, expr) in expressions(&dashboard) {
        for (at, _) in expr.match_indices('$') {
            let rest = expr[at + 1..].trim_start_matches('{');
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                defined.contains(name.as_str()),
                "{place}: ${name} is not a variable of the dashboard"
            );
        }
    }
}
