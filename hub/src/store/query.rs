//! Application list queries for both backends: filters and label selectors to SQL with `$n` binds, keyset order, and the opaque page cursor.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edgecd_core::selector::{LabelSelector, Operator};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use edgecd_core::Health;

use super::model::{AppFilter, AppSort, AppSummary, SortKey};
use super::{Result, StoreError};

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// SQL text with its binds in placeholder order.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    /// Adds a bind and returns its placeholder.
    pub fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn bind_text(&mut self, value: &str) -> String {
        self.bind(Bind::Text(value.to_owned()))
    }

    fn bind_list<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) -> String {
        let placeholders: Vec<String> = values.into_iter().map(|v| self.bind_text(v)).collect();
        placeholders.join(", ")
    }
}

/// Columns of an `AppSummary` row over `applications a` joined with its
/// `app_status s` row (migration 0011). The cluster's connection state is a
/// scalar subquery (one primary-key lookup per returned row), so `clusters`
/// never takes part in the page's join plan: with a misestimated filter (a
/// name search) PostgreSQL once joined it by a nested loop with a
/// sequential scan of `clusters` per app row.
pub(crate) const SUMMARY_COLUMNS: &str = "a.project, a.name, a.cluster, a.namespace, a.repo_url, a.path, \
     a.target_revision, s.sync, s.health, s.revision, s.operation_phase, a.labels, s.updated_at, \
     a.origin, a.owner_kind, a.owner_project, a.owner_name, a.owner_scope, \
     (SELECT cc.conn_state FROM clusters cc WHERE cc.name = a.cluster) AS conn_state, \
     a.spec_version, a.automated, s.error_conditions, s.status_version";

/// Which table alias a condition reads an app's columns from. `app_status s`
/// carries copies of the app's project, name and cluster (and its id as
/// `app_id`), so a query driven by a status index (a page sorted by sync,
/// health or update time) keeps every key condition on that table, where
/// its index ranges apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Aliases {
    /// Project, name, cluster and id: `a` (`applications`) or `s`.
    keys: &'static str,
    /// Sync and health: `s`, or `a` over the counts table.
    status: &'static str,
}

/// Keys from `applications a`, status from `app_status s`.
const APPS: Aliases = Aliases {
    keys: "a",
    status: "s",
};

/// Everything from `app_status s` (a page ordered by a status index).
const STATUS_DRIVEN: Aliases = Aliases {
    keys: "s",
    status: "s",
};

/// The `app_counts a` table: keys and status columns of one row.
const COUNTS: Aliases = Aliases {
    keys: "a",
    status: "a",
};

impl Aliases {
    fn id(self) -> &'static str {
        if self.keys == "s" { "s.app_id" } else { "a.id" }
    }
}

/// The `FROM` clause of queries that group on the cluster's connection
/// state.
const FROM_APPS_CLUSTERS: &str = "applications a JOIN app_status s ON s.app_id = a.id \
     LEFT JOIN clusters c ON c.name = a.cluster";

/// The `FROM` clause for a filter over apps: the status row joins when the
/// filter (or the caller, `status`) needs it, the clusters when the filter
/// names connection states (normally resolved to cluster names before).
fn from_for(filter: &AppFilter, aliases: Aliases, status: bool) -> &'static str {
    let status = status || !filter.sync.is_empty() || !filter.health.is_empty();
    match (aliases.keys == "s", status, needs_cluster_join(filter)) {
        (true, _, false) => "app_status s JOIN applications a ON a.id = s.app_id",
        (true, _, true) => {
            "app_status s JOIN applications a ON a.id = s.app_id \
             LEFT JOIN clusters c ON c.name = a.cluster"
        }
        (false, true, false) => "applications a JOIN app_status s ON s.app_id = a.id",
        (false, true, true) => FROM_APPS_CLUSTERS,
        (false, false, false) => "applications a",
        (false, false, true) => "applications a LEFT JOIN clusters c ON c.name = a.cluster",
    }
}

/// The clusters whose apps count as health Unknown whatever they last
/// reported (`ConnectionKind::reachable`: all but Connected). A handful of
/// rows at most; both backends run it once per query as a hashed subplan.
const UNREACHABLE_CLUSTERS: &str =
    "SELECT name FROM clusters WHERE conn_state IN ('Pending', 'Stale', 'Disconnected', 'Revoked')";

/// The health an app is counted and filtered by (`AppSummary::health_shown`).
fn health_shown(keys: &str, status: &str) -> String {
    format!(
        "CASE WHEN {keys}.cluster IN ({UNREACHABLE_CLUSTERS}) THEN 'Unknown' ELSE {status}.health END"
    )
}

/// Up to this many projects in a filter, a name search scans the projects'
/// `(project, name)` index instead of using the trigram index.
const SEARCH_SCAN_PROJECTS: usize = 3;

/// Appends the filter's conditions (joined by AND) to `sql`; `TRUE` if none.
/// Keys over `applications a`, status over `app_status s`.
pub(crate) fn where_clause(filter: &AppFilter, sql: &mut Sql) -> String {
    where_clause_on(filter, sql, APPS)
}

/// `where_clause` with the columns read from the given aliases.
fn where_clause_on(filter: &AppFilter, sql: &mut Sql, aliases: Aliases) -> String {
    let Aliases { keys, status } = aliases;
    let mut conditions: Vec<String> = Vec::new();
    if !filter.projects.is_empty() {
        let list = sql.bind_list(filter.projects.iter().map(String::as_str));
        conditions.push(format!("{keys}.project IN ({list})"));
    }
    if !filter.clusters.is_empty() {
        let list = sql.bind_list(filter.clusters.iter().map(String::as_str));
        conditions.push(format!("{keys}.cluster IN ({list})"));
    }
    selector_conditions(
        &filter.cluster_selector,
        &format!("{keys}.cluster"),
        "SELECT cluster FROM cluster_labels",
        sql,
        &mut conditions,
    );
    match &filter.resolved_app_ids {
        // Ids from the database, formatted as integers: nothing to bind.
        Some(ids) if ids.is_empty() => conditions.push("1 = 0".into()),
        Some(ids) => {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            conditions.push(format!("{} IN ({})", aliases.id(), list.join(", ")));
        }
        None => selector_conditions(
            &filter.app_selector,
            aliases.id(),
            "SELECT app_id FROM app_labels",
            sql,
            &mut conditions,
        ),
    }
    if !filter.sync.is_empty() {
        let list = sql.bind_list(filter.sync.iter().map(|s| s.as_str()));
        conditions.push(format!("{status}.sync IN ({list})"));
    }
    if !filter.health.is_empty() {
        // By the health shown: a reported health on a reachable cluster, or
        // Unknown for every app of an unreachable one. Kept as two index-
        // friendly branches rather than one CASE.
        let reported: Vec<&str> = filter
            .health
            .iter()
            .filter(|h| **h != Health::Unknown)
            .map(|h| h.as_str())
            .collect();
        let mut branches = Vec::new();
        if !reported.is_empty() {
            let list = sql.bind_list(reported);
            branches.push(format!(
                "({status}.health IN ({list}) AND {keys}.cluster NOT IN ({UNREACHABLE_CLUSTERS}))"
            ));
        }
        if filter.health.contains(&Health::Unknown) {
            branches.push(format!(
                "({status}.health = 'Unknown' OR {keys}.cluster IN ({UNREACHABLE_CLUSTERS}))"
            ));
        }
        conditions.push(if branches.len() == 1 {
            branches.concat()
        } else {
            format!("({})", branches.join(" OR "))
        });
    }
    if let Some(origin) = filter.origin {
        let p = sql.bind_text(origin.as_str());
        conditions.push(format!("a.origin = {p}"));
    }
    if let Some(owner) = &filter.owner {
        let kind = sql.bind_text(&owner.kind);
        let project = sql.bind_text(&owner.project);
        let name = sql.bind_text(&owner.name);
        conditions.push(format!(
            "a.owner_kind = {kind} AND a.owner_project = {project} AND a.owner_name = {name}"
        ));
        if !owner.scope.is_empty() {
            let scope = sql.bind_text(&owner.scope);
            conditions.push(format!("a.owner_scope = {scope}"));
        }
    }
    if !filter.connection.is_empty() {
        let list = sql.bind_list(filter.connection.iter().map(|c| c.as_str()));
        conditions.push(format!("c.conn_state IN ({list})"));
    }
    if !filter.search.is_empty() {
        let pattern = format!("%{}%", escape_like(&filter.search.to_lowercase()));
        let p = sql.bind(Bind::Text(pattern));
        // Names are DNS-1123 (lower case), so a lower-cased pattern makes
        // the match case-insensitive on both backends.
        if !filter.projects.is_empty() && filter.projects.len() <= SEARCH_SCAN_PROJECTS {
            // A few projects: scanning their (project, name) index range and
            // matching each name is cheaper than the trigram index, whose
            // posting lists for trigrams every fleet name shares ("edg",
            // "-ed") are as long as the table (EXPLAIN ANALYZE: ~20 ms per
            // query at 100,000 apps). `|| ''` keeps the planner off it.
            conditions.push(format!("({keys}.name || '') LIKE {p} ESCAPE '\\'"));
        } else {
            conditions.push(format!("a.name LIKE {p} ESCAPE '\\'"));
        }
    }
    if !filter.names.is_empty() {
        let ranges: Vec<String> = filter
            .names
            .iter()
            .map(|name| name_condition(name, sql))
            .collect();
        conditions.push(if ranges.len() == 1 {
            ranges.concat()
        } else {
            format!("({})", ranges.join(" OR "))
        });
    }
    if conditions.is_empty() {
        "1 = 1".to_owned()
    } else {
        conditions.join(" AND ")
    }
}

/// Cluster-side filters (label selector, connection state) resolved to the
/// names of the matching registered clusters before the app query, so that
/// the app query is a plain `a.cluster IN (…)` served by the
/// `(cluster, project, name)` index instead of a semi-join per app row.
///
/// Only done when it is exact: when a connection state is asked for (which
/// already requires a registered cluster), or when the selector is purely
/// positive (`=`, `in`, exists), which an unregistered cluster without
/// labels never matches.
pub(crate) fn cluster_prefilter(filter: &AppFilter) -> Option<Sql> {
    let positive = filter
        .cluster_selector
        .match_expressions
        .iter()
        .all(|r| matches!(r.operator, Operator::In | Operator::Exists));
    let selective = !filter.cluster_selector.is_empty() && positive;
    if !selective && filter.connection.is_empty() {
        return None;
    }
    let cluster_side = AppFilter {
        cluster_selector: filter.cluster_selector.clone(),
        connection: filter.connection.clone(),
        ..AppFilter::default()
    };
    let mut sql = Sql::default();
    let condition = where_clause(&cluster_side, &mut sql)
        .replace("a.cluster", "name")
        .replace("c.conn_state", "conn_state");
    sql.text = format!("SELECT name FROM clusters WHERE {condition}");
    Some(sql)
}

/// At most this many app ids are resolved from an app-label selector; a
/// less selective selector stays a semi-join.
pub(crate) const MAX_RESOLVED_APPS: usize = 5_000;

/// A positive app-label selector (`key=value`, `in`, exists) resolved to
/// app ids before the page query (`LIMIT MAX_RESOLVED_APPS + 1`), so that
/// the page query is an id lookup instead of a semi-join per row that the
/// planners order badly next to a sort.
pub(crate) fn app_label_prefilter(filter: &AppFilter) -> Option<Sql> {
    let selector = &filter.app_selector;
    if selector.is_empty()
        || filter.resolved_app_ids.is_some()
        || !selector.match_expressions.iter().all(|r| {
            matches!(r.operator, Operator::Exists)
                || (matches!(r.operator, Operator::In) && !r.values.is_empty())
        })
    {
        return None;
    }
    let mut sql = Sql::default();
    // Restricted to the (resolved) clusters, a common label stays selective:
    // each label row carries its app's cluster (migration 0007), so every
    // part is one range of `(key, value, cluster, app_id)` per cluster.
    // (Binds are numbered in the order they appear in the text.)
    let clusters = |sql: &mut Sql| -> String {
        if filter.clusters.is_empty() {
            String::new()
        } else {
            let list = sql.bind_list(filter.clusters.iter().map(String::as_str));
            format!(" AND cluster IN ({list})")
        }
    };
    let mut parts = Vec::new();
    for (key, value) in &selector.match_labels {
        let k = sql.bind_text(key);
        let v = sql.bind_text(value);
        let c = clusters(&mut sql);
        parts.push(format!(
            "SELECT app_id FROM app_labels WHERE key = {k} AND value = {v}{c}"
        ));
    }
    for requirement in &selector.match_expressions {
        let k = sql.bind_text(&requirement.key);
        if matches!(requirement.operator, Operator::In) {
            let list = sql.bind_list(requirement.values.iter().map(String::as_str));
            let c = clusters(&mut sql);
            parts.push(format!(
                "SELECT app_id FROM app_labels WHERE key = {k} AND value IN ({list}){c}"
            ));
        } else {
            let c = clusters(&mut sql);
            parts.push(format!("SELECT app_id FROM app_labels WHERE key = {k}{c}"));
        }
    }
    let limit = sql.bind(Bind::Int(MAX_RESOLVED_APPS as i64 + 1));
    sql.text = format!(
        "SELECT app_id FROM ({}) ids LIMIT {limit}",
        parts.join(" INTERSECT ")
    );
    Some(sql)
}

/// A name search within at most `SEARCH_SCAN_PROJECTS` projects (and no
/// app-label selector) resolved to app ids before the page query
/// (`LIMIT MAX_RESOLVED_APPS + 1`): on PostgreSQL an index-only scan of
/// `(project, name, id)` (migration 0006) matching each name, on SQLite of
/// the `(project, name)` index (which ends in the rowid). The page query
/// then looks up the ~100 matches by id instead of visiting every row of
/// the projects in the heap.
pub(crate) fn search_prefilter(filter: &AppFilter) -> Option<Sql> {
    if filter.search.is_empty()
        || filter.projects.is_empty()
        || filter.projects.len() > SEARCH_SCAN_PROJECTS
        || filter.resolved_app_ids.is_some()
        || !filter.app_selector.is_empty()
    {
        return None;
    }
    let searched = AppFilter {
        projects: filter.projects.clone(),
        search: filter.search.clone(),
        ..AppFilter::default()
    };
    let mut sql = Sql::default();
    let condition = where_clause(&searched, &mut sql);
    let limit = sql.bind(Bind::Int(MAX_RESOLVED_APPS as i64 + 1));
    sql.text = format!("SELECT a.id FROM applications a WHERE {condition} LIMIT {limit}");
    Some(sql)
}

/// Which prefilter resolved a filter's app ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefilter {
    /// `app_label_prefilter`: the app-label selector within the clusters.
    AppLabels,
    /// `search_prefilter`: the name search within the projects.
    Search,
}

/// Whether the ids a prefilter resolved are exactly the filter's matches
/// (nothing else restricts them), so their number is the total and no
/// count query is needed.
pub(crate) fn prefilter_is_whole(filter: &AppFilter, prefilter: Prefilter) -> bool {
    let rest = match prefilter {
        Prefilter::AppLabels => AppFilter {
            clusters: Vec::new(),
            app_selector: LabelSelector::default(),
            ..filter.clone()
        },
        Prefilter::Search => AppFilter {
            projects: Vec::new(),
            search: String::new(),
            ..filter.clone()
        },
    };
    AppFilter {
        resolved_app_ids: None,
        ..rest
    } == AppFilter::default()
}

/// The filter with its cluster-side part replaced by the resolved cluster
/// names; `None` if no cluster can match (the answer is empty).
pub(crate) fn apply_prefilter(filter: &AppFilter, names: Vec<String>) -> Option<AppFilter> {
    let clusters: Vec<String> = if filter.clusters.is_empty() {
        names
    } else {
        names
            .into_iter()
            .filter(|n| filter.clusters.contains(n))
            .collect()
    };
    if clusters.is_empty() {
        return None;
    }
    Some(AppFilter {
        clusters,
        cluster_selector: LabelSelector::default(),
        connection: Vec::new(),
        ..filter.clone()
    })
}

/// Whether the filter needs the clusters join (connection state).
pub(crate) fn needs_cluster_join(filter: &AppFilter) -> bool {
    !filter.connection.is_empty()
}

/// Label selector → `column IN (subquery)` / `NOT IN` conditions over a
/// `(owner, key, value)` label table.
fn selector_conditions(
    selector: &LabelSelector,
    column: &str,
    subquery: &str,
    sql: &mut Sql,
    conditions: &mut Vec<String>,
) {
    for (key, value) in &selector.match_labels {
        let k = sql.bind_text(key);
        let v = sql.bind_text(value);
        conditions.push(format!(
            "{column} IN ({subquery} WHERE key = {k} AND value = {v})"
        ));
    }
    for requirement in &selector.match_expressions {
        let k = sql.bind_text(&requirement.key);
        match requirement.operator {
            Operator::In if requirement.values.is_empty() => conditions.push("1 = 0".into()),
            Operator::NotIn if requirement.values.is_empty() => {}
            Operator::In | Operator::NotIn => {
                let list = sql.bind_list(requirement.values.iter().map(String::as_str));
                let not = if requirement.operator == Operator::NotIn {
                    "NOT "
                } else {
                    ""
                };
                conditions.push(format!(
                    "{column} {not}IN ({subquery} WHERE key = {k} AND value IN ({list}))"
                ));
            }
            Operator::Exists => {
                conditions.push(format!("{column} IN ({subquery} WHERE key = {k})"));
            }
            Operator::DoesNotExist => {
                conditions.push(format!("{column} NOT IN ({subquery} WHERE key = {k})"));
            }
        }
    }
}

/// `name` and every `name@<cluster>`: the index range `[name, nameA)` (`A`
/// follows `@`) of `applications (name, project)`, less the names in it
/// that continue `name` with a character before `@` (`nginx-2`, `nginx.x`,
/// `nginx0`). Names compare bytewise on both backends (`COLLATE "C"`,
/// SQLite's binary collation), so the range holds exactly the names that
/// start with `name` and continue, if at all, with a byte before `A`.
fn name_condition(name: &str, sql: &mut Sql) -> String {
    let low = sql.bind_text(name);
    let high = sql.bind(Bind::Text(format!("{name}A")));
    let exact = sql.bind_text(name);
    let edge = sql.bind(Bind::Text(format!("{name}@")));
    format!("(a.name >= {low} AND a.name < {high} AND (a.name = {exact} OR a.name >= {edge}))")
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The ordered key columns of a sort; the last two are always
/// `(project, name)` or `(name, project)`, which are unique together. A
/// status sort reads all of them from `app_status s`, whose indexes hold
/// them in that order.
pub(crate) fn sort_columns(key: SortKey) -> &'static [&'static str] {
    match key {
        SortKey::Name => &["a.name", "a.project"],
        SortKey::Project => &["a.project", "a.name"],
        SortKey::Cluster => &["a.cluster", "a.project", "a.name"],
        SortKey::Sync => &["s.sync", "s.project", "s.name"],
        SortKey::Health => &["s.health", "s.project", "s.name"],
        SortKey::UpdatedAt => &["s.updated_at", "s.project", "s.name"],
    }
}

/// The full list query for one page: filter, keyset condition after the
/// cursor, order, and `LIMIT page_size + 1` (the extra row tells whether a
/// next page exists).
///
/// Sorted by cluster with exactly one sync status, the sync column (a
/// constant in every matching row) joins the keyset and the order:
/// `(cluster, sync, project, name)` is then a prefix-ordered range of the
/// `app_status_cluster_sync` index, where `(cluster, project, name)`
/// bounded only its first column (a continuation page scanned every later
/// cluster's rows).
pub(crate) fn list_sql(
    filter: &AppFilter,
    cursor_filter: &AppFilter,
    sort: AppSort,
    cursor: Option<&str>,
    page_size: u32,
) -> Result<Sql> {
    let values = match cursor {
        Some(cursor) => {
            let values = decode_cursor(cursor, cursor_filter, sort)?;
            if values.len() != sort_columns(sort.key).len() {
                return Err(StoreError::InvalidCursor);
            }
            Some(values)
        }
        None => None,
    };
    // Sorted by cluster after a cursor, the clusters before the cursor's
    // (after it, descending) cannot match: leaving them out of the list
    // spares PostgreSQL one index descent per skipped cluster (it does not
    // prune an `IN` list by the keyset). Names compare bytewise in Rust as
    // in both databases (`COLLATE "C"`, SQLite's binary collation).
    let filter = match values.as_deref() {
        Some([Bind::Text(after), ..])
            if sort.key == SortKey::Cluster && !filter.clusters.is_empty() =>
        {
            let clusters: Vec<String> = filter
                .clusters
                .iter()
                .filter(|c| {
                    if sort.descending {
                        c.as_str() <= after.as_str()
                    } else {
                        c.as_str() >= after.as_str()
                    }
                })
                .cloned()
                .collect();
            AppFilter {
                // None left: nothing after the cursor (`1 = 0`).
                resolved_app_ids: if clusters.is_empty() {
                    Some(Vec::new())
                } else {
                    filter.resolved_app_ids.clone()
                },
                clusters,
                ..filter.clone()
            }
        }
        _ => filter.clone(),
    };
    let filter = &filter;
    let fixed_sync = match filter.sync.as_slice() {
        [only] if sort.key == SortKey::Cluster => Some(*only),
        _ => None,
    };
    let mut columns: Vec<&str> = sort_columns(sort.key).to_vec();
    if fixed_sync.is_some() {
        columns = vec!["s.cluster", "s.sync", "s.project", "s.name"];
    }
    let aliases = if columns[0].starts_with("s.") {
        STATUS_DRIVEN
    } else {
        APPS
    };
    let mut sql = Sql::default();
    let mut condition = where_clause_on(filter, &mut sql, aliases);
    if let Some(mut values) = values {
        if let Some(sync) = fixed_sync {
            values.insert(1, Bind::Text(sync.as_str().to_owned()));
        }
        let placeholders: Vec<String> = values.into_iter().map(|v| sql.bind(v)).collect();
        let op = if sort.descending { "<" } else { ">" };
        condition = format!(
            "{condition} AND ({}) {op} ({})",
            columns.join(", "),
            placeholders.join(", ")
        );
    }
    let direction = if sort.descending { "DESC" } else { "ASC" };
    let order: Vec<String> = columns.iter().map(|c| format!("{c} {direction}")).collect();
    let limit = sql.bind(Bind::Int(i64::from(page_size) + 1));
    sql.text = format!(
        "SELECT {SUMMARY_COLUMNS} FROM {} WHERE {condition} ORDER BY {} LIMIT {limit}",
        from_for(filter, aliases, true),
        order.join(", ")
    );
    Ok(sql)
}

/// `SELECT count(*)` of the filter.
pub(crate) fn count_sql(filter: &AppFilter) -> Sql {
    let mut sql = Sql::default();
    let condition = where_clause(filter, &mut sql);
    sql.text = format!(
        "SELECT count(*) FROM {} WHERE {condition}",
        from_for(filter, APPS, false)
    );
    sql
}

/// Whether the filter restricts only clusters, sync and health: its counts
/// are then sums over `app_counts` (migration 0006), which triggers keep
/// exact in the same transaction as every change of `applications`.
pub(crate) fn counts_table_serves(filter: &AppFilter) -> bool {
    let rest = AppFilter {
        clusters: Vec::new(),
        sync: Vec::new(),
        health: Vec::new(),
        ..filter.clone()
    };
    rest == AppFilter::default()
}

/// The exact total of a filter the counts table serves (see
/// `counts_table_serves`): a sum over its rows, at most one per
/// (cluster, sync, health).
pub(crate) fn counts_total_sql(filter: &AppFilter) -> Option<Sql> {
    if !counts_table_serves(filter) {
        return None;
    }
    let mut sql = Sql::default();
    let condition = where_clause_on(filter, &mut sql, COUNTS);
    sql.text =
        format!("SELECT CAST(COALESCE(SUM(a.n), 0) AS BIGINT) FROM app_counts a WHERE {condition}");
    Some(sql)
}

/// A grouping of `count_apps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountGroup {
    Sync,
    Health,
    Connection,
    Project,
}

/// `SELECT group, count ... GROUP BY group` of the filter: from the counts
/// table when it serves the filter (every group but the project), else
/// over the matching apps.
pub(crate) fn group_count_sql(filter: &AppFilter, group: CountGroup) -> Sql {
    let mut sql = Sql::default();
    let from_counts = group != CountGroup::Project && counts_table_serves(filter);
    let aliases = if from_counts { COUNTS } else { APPS };
    let condition = where_clause_on(filter, &mut sql, aliases);
    let status = aliases.status;
    let column = match group {
        CountGroup::Sync => format!("{status}.sync"),
        CountGroup::Health => health_shown(aliases.keys, status),
        CountGroup::Connection => "COALESCE(c.conn_state, 'Unregistered')".to_owned(),
        CountGroup::Project => "a.project".to_owned(),
    };
    sql.text = if from_counts {
        let from = if group == CountGroup::Connection {
            "app_counts a LEFT JOIN clusters c ON c.name = a.cluster"
        } else {
            "app_counts a"
        };
        format!(
            "SELECT {column}, CAST(SUM(a.n) AS BIGINT) FROM {from} WHERE {condition} \
             GROUP BY {column} HAVING SUM(a.n) > 0"
        )
    } else {
        let from = if group == CountGroup::Connection {
            FROM_APPS_CLUSTERS
        } else {
            from_for(
                filter,
                APPS,
                matches!(group, CountGroup::Sync | CountGroup::Health),
            )
        };
        format!("SELECT {column}, count(*) FROM {from} WHERE {condition} GROUP BY {column}")
    };
    sql
}

/// `SELECT cluster, sync, health, count ... GROUP BY` of the filter: the
/// per-cluster counts of a page of clusters in one query, from the counts
/// table when it serves the filter.
pub(crate) fn cluster_counts_sql(filter: &AppFilter) -> Sql {
    let mut sql = Sql::default();
    sql.text = if counts_table_serves(filter) {
        let condition = where_clause_on(filter, &mut sql, COUNTS);
        let health = health_shown("a", "a");
        format!(
            "SELECT a.cluster, a.sync, {health}, CAST(SUM(a.n) AS BIGINT) FROM app_counts a \
             WHERE {condition} GROUP BY a.cluster, a.sync, {health} HAVING SUM(a.n) > 0"
        )
    } else {
        let condition = where_clause(filter, &mut sql);
        let health = health_shown("a", "s");
        format!(
            "SELECT a.cluster, s.sync, {health}, count(*) FROM {} WHERE {condition} \
             GROUP BY a.cluster, s.sync, {health}",
            from_for(filter, APPS, true)
        )
    };
    sql
}

/// Folds `(cluster, sync, health, count)` rows into per-cluster counts.
pub(crate) fn fold_cluster_counts(
    rows: Vec<(String, String, String, i64)>,
) -> std::collections::BTreeMap<String, super::model::AppCounts> {
    let mut counts: std::collections::BTreeMap<String, super::model::AppCounts> =
        std::collections::BTreeMap::new();
    for (cluster, sync, health, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        let entry = counts.entry(cluster).or_default();
        entry.total += n;
        *entry.by_sync.entry(sync).or_default() += n;
        *entry.by_health.entry(health).or_default() += n;
    }
    counts
}

pub(crate) fn clamp_page_size(page_size: u32) -> u32 {
    page_size.clamp(1, 1000)
}

// === Bulk import ===

/// Apps per statement of a bulk import.
pub(crate) const IMPORT_CHUNK: usize = 500;

// === Cursor ===

/// What an application-list cursor holds: a hash binding it to the filter
/// and sort, and the last row's sort key values.
#[derive(Debug, Serialize, Deserialize)]
struct AppCursor {
    v: u8,
    h: String,
    k: Vec<CursorValue>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum CursorValue {
    Int(i64),
    Text(String),
}

fn filter_hash(filter: &AppFilter, sort: AppSort) -> String {
    let json = serde_json::to_vec(&(filter, sort)).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The cursor continuing after `last`.
pub(crate) fn encode_cursor(filter: &AppFilter, sort: AppSort, last: &AppSummary) -> String {
    let text = |s: &str| CursorValue::Text(s.to_owned());
    let mut k = match sort.key {
        SortKey::Name => vec![text(&last.name), text(&last.project)],
        SortKey::Project => vec![text(&last.project), text(&last.name)],
        SortKey::Cluster => vec![text(&last.cluster)],
        SortKey::Sync => vec![text(last.sync.as_str())],
        SortKey::Health => vec![text(last.health.as_str())],
        SortKey::UpdatedAt => vec![CursorValue::Int(super::codec::to_ms(last.updated_at))],
    };
    if !matches!(sort.key, SortKey::Name | SortKey::Project) {
        k.push(text(&last.project));
        k.push(text(&last.name));
    }
    let cursor = AppCursor {
        v: 1,
        h: filter_hash(filter, sort),
        k,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
}

fn decode_cursor(cursor: &str, filter: &AppFilter, sort: AppSort) -> Result<Vec<Bind>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let cursor: AppCursor =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    if cursor.v != 1 || cursor.h != filter_hash(filter, sort) {
        return Err(StoreError::InvalidCursor);
    }
    let expect_int_first = sort.key == SortKey::UpdatedAt;
    cursor
        .k
        .into_iter()
        .enumerate()
        .map(|(i, v)| match (v, i == 0 && expect_int_first) {
            (CursorValue::Int(n), true) => Ok(Bind::Int(n)),
            (CursorValue::Text(s), false) => Ok(Bind::Text(s)),
            _ => Err(StoreError::InvalidCursor),
        })
        .collect()
}

/// Cursor of the simple id-ordered lists (commands, events, audit): the last
/// row's id, newest first.
pub(crate) fn encode_id_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("id:{id}"))
}

pub(crate) fn decode_id_cursor(cursor: Option<&str>) -> Result<i64> {
    let Some(cursor) = cursor else {
        return Ok(i64::MAX);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    text.strip_prefix("id:")
        .and_then(|n| n.parse().ok())
        .ok_or(StoreError::InvalidCursor)
}

/// Cursor of a time-ordered list (deployments): the last row's time (ms) and id, newest first.
pub(crate) fn encode_time_cursor(time_ms: i64, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("at:{time_ms}:{id}"))
}

/// The position a time cursor names (`(i64::MAX, i64::MAX)` without one: the start).
pub(crate) fn decode_time_cursor(cursor: Option<&str>) -> Result<(i64, i64)> {
    let Some(cursor) = cursor else {
        return Ok((i64::MAX, i64::MAX));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    text.strip_prefix("at:")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(time, id)| Some((time.parse().ok()?, id.parse().ok()?)))
        .ok_or(StoreError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgecd_core::{Health, SyncStatus};

    #[test]
    fn selector_becomes_subqueries_with_binds() {
        let filter = AppFilter {
            cluster_selector: LabelSelector::parse("region=eu,tier in (edge,core),!legacy,gpu")
                .unwrap(),
            health: vec![Health::Degraded],
            search: "Web_1".into(),
            ..AppFilter::default()
        };
        let mut sql = Sql::default();
        let clause = where_clause(&filter, &mut sql);
        assert_eq!(
            clause,
            "a.cluster IN (SELECT cluster FROM cluster_labels WHERE key = $1 AND value = $2) AND \
             a.cluster IN (SELECT cluster FROM cluster_labels WHERE key = $3 AND value IN ($4, $5)) AND \
             a.cluster NOT IN (SELECT cluster FROM cluster_labels WHERE key = $6) AND \
             a.cluster IN (SELECT cluster FROM cluster_labels WHERE key = $7) AND \
             (s.health IN ($8) AND a.cluster NOT IN (SELECT name FROM clusters WHERE conn_state IN \
             ('Pending', 'Stale', 'Disconnected', 'Revoked'))) AND a.name LIKE $9 ESCAPE '\\'"
        );
        assert_eq!(sql.binds[8], Bind::Text("%web\\_1%".into()));
    }

    fn summary() -> AppSummary {
        AppSummary {
            project: "p".into(),
            name: "n".into(),
            cluster: "c".into(),
            namespace: String::new(),
            repo_url: String::new(),
            path: String::new(),
            target_revision: String::new(),
            sync: SyncStatus::Synced,
            health: Health::Healthy,
            revision: String::new(),
            operation_phase: None,
            labels: Default::default(),
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            origin: edgecd_core::app::AppOrigin::Managed,
            owner: None,
            cluster_connection: None,
            spec_version: 1,
            automated: false,
            error_conditions: 0,
            status_version: 0,
        }
    }

    #[test]
    fn totals_come_from_counts_or_prefilters_only_when_exact() {
        let served = AppFilter {
            clusters: vec!["c1".into()],
            sync: vec![SyncStatus::Synced],
            health: vec![Health::Degraded],
            ..AppFilter::default()
        };
        assert!(counts_table_serves(&served));
        let total = counts_total_sql(&served).unwrap();
        assert!(total.text.contains("FROM app_counts a"), "{}", total.text);
        let projects = AppFilter {
            projects: vec!["p".into()],
            ..served.clone()
        };
        assert!(counts_total_sql(&projects).is_none());
        assert!(
            count_sql(&projects)
                .text
                .starts_with("SELECT count(*) FROM applications a")
        );

        let search = AppFilter {
            projects: vec!["p".into()],
            search: "web".into(),
            ..AppFilter::default()
        };
        assert!(search_prefilter(&search).is_some());
        assert!(prefilter_is_whole(&search, Prefilter::Search));
        let narrower = AppFilter {
            health: vec![Health::Healthy],
            ..search.clone()
        };
        assert!(!prefilter_is_whole(&narrower, Prefilter::Search));
        let labelled = AppFilter {
            app_selector: LabelSelector::parse("app=web").unwrap(),
            ..search
        };
        assert!(search_prefilter(&labelled).is_none());
    }

    #[test]
    fn cluster_sort_continuations_skip_clusters_before_the_cursor() {
        let filter = AppFilter {
            clusters: vec!["c1".into(), "c2".into(), "c3".into()],
            sync: vec![SyncStatus::OutOfSync],
            ..AppFilter::default()
        };
        let sort = AppSort {
            key: SortKey::Cluster,
            descending: false,
        };
        let mut row = summary();
        row.cluster = "c2".into();
        let cursor = encode_cursor(&filter, sort, &row);
        let sql = list_sql(&filter, &filter, sort, Some(&cursor), 10).unwrap();
        let clusters: Vec<&Bind> = sql.binds.iter().take(2).collect();
        assert_eq!(
            clusters,
            vec![&Bind::Text("c2".into()), &Bind::Text("c3".into())],
            "{}",
            sql.text
        );
        assert!(
            sql.text
                .contains("(s.cluster, s.sync, s.project, s.name) > ($4, $5, $6, $7)"),
            "{}",
            sql.text
        );
        assert_eq!(sql.binds[4], Bind::Text("OutOfSync".into()));
    }

    #[test]
    fn time_cursors_round_trip_and_refuse_others() {
        let cursor = encode_time_cursor(1_700_000_000_123, 42);
        assert_eq!(
            decode_time_cursor(Some(&cursor)).unwrap(),
            (1_700_000_000_123, 42)
        );
        assert_eq!(decode_time_cursor(None).unwrap(), (i64::MAX, i64::MAX));
        let id_cursor = encode_id_cursor(42);
        for bad in [id_cursor.as_str(), "not base64!", "YXQ6MTI"] {
            assert!(matches!(
                decode_time_cursor(Some(bad)),
                Err(StoreError::InvalidCursor)
            ));
        }
    }

    #[test]
    fn cursor_is_bound_to_filter_and_sort() {
        let filter = AppFilter {
            sync: vec![SyncStatus::Synced],
            ..AppFilter::default()
        };
        let sort = AppSort {
            key: SortKey::UpdatedAt,
            descending: true,
        };
        let row = summary();
        let cursor = encode_cursor(&filter, sort, &row);
        let binds = decode_cursor(&cursor, &filter, sort).unwrap();
        assert_eq!(
            binds,
            vec![Bind::Int(0), Bind::Text("p".into()), Bind::Text("n".into())]
        );
        let other_sort = AppSort {
            key: SortKey::Name,
            ..sort
        };
        assert!(matches!(
            decode_cursor(&cursor, &filter, other_sort),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(
            decode_cursor(&cursor, &AppFilter::default(), sort),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(
            decode_cursor("not base64!", &filter, sort),
            Err(StoreError::InvalidCursor)
        ));
    }
}
