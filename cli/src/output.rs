//! Printing: aligned tables (table, wide) and YAML/JSON of serializable views; names for protocol enums.

use std::fmt::Write as _;
use std::io::Write as _;

use edgecd_proto::v1;
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::Output;

/// Writes results to stdout. Unlike `print!`, which panics, a failed write (`EPIPE` once the reader of a
/// pipe exited) is returned, so the command stops and `main` exits quietly.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.flush()
}

/// Writes messages to stderr; errors (a closed stderr) are ignored rather than panicking.
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// A plain, kubectl-style table: upper-case headers, columns separated by three spaces.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (i, cell) in cells.enumerate().take(columns) {
                if i + 1 < columns {
                    let _ = write!(text, "{cell:<width$}   ", width = widths[i]);
                } else {
                    text.push_str(cell);
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut out, &mut self.headers.iter().copied());
        for row in &self.rows {
            line(&mut out, &mut row.iter().map(String::as_str));
        }
        out
    }
}

/// Prints `value` as YAML or JSON (for `-o yaml|json`); returns false for table formats.
pub fn print_structured<T: Serialize + ?Sized>(output: Output, value: &T) -> anyhow::Result<bool> {
    match output {
        Output::Json => {
            outln!("{}", serde_json::to_string_pretty(value)?)?;
            Ok(true)
        }
        Output::Yaml => {
            out!("{}", to_yaml(value)?)?;
            Ok(true)
        }
        Output::Table | Output::Wide => Ok(false),
    }
}

pub fn to_yaml<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    // Through JSON, so maps and enums look the same in both formats.
    let json = serde_json::to_value(value)?;
    Ok(serde_saphyr::to_string(&json)?)
}

pub fn sync_name(code: i32) -> &'static str {
    match v1::SyncStatusCode::try_from(code) {
        Ok(v1::SyncStatusCode::Synced) => "Synced",
        Ok(v1::SyncStatusCode::OutOfSync) => "OutOfSync",
        Ok(v1::SyncStatusCode::Unknown) => "Unknown",
        _ => "-",
    }
}

pub fn health_name(code: i32) -> &'static str {
    match v1::HealthStatusCode::try_from(code) {
        Ok(v1::HealthStatusCode::Healthy) => "Healthy",
        Ok(v1::HealthStatusCode::Progressing) => "Progressing",
        Ok(v1::HealthStatusCode::Degraded) => "Degraded",
        Ok(v1::HealthStatusCode::Suspended) => "Suspended",
        Ok(v1::HealthStatusCode::Missing) => "Missing",
        Ok(v1::HealthStatusCode::Unknown) => "Unknown",
        _ => "-",
    }
}

pub fn connection_name(code: i32) -> &'static str {
    match v1::ConnectionStateCode::try_from(code) {
        Ok(v1::ConnectionStateCode::Pending) => "Pending",
        Ok(v1::ConnectionStateCode::Connected) => "Connected",
        Ok(v1::ConnectionStateCode::Stale) => "Stale",
        Ok(v1::ConnectionStateCode::Disconnected) => "Disconnected",
        Ok(v1::ConnectionStateCode::Revoked) => "Revoked",
        _ => "-",
    }
}

pub fn phase_name(code: i32) -> &'static str {
    match v1::OperationPhase::try_from(code) {
        Ok(v1::OperationPhase::Running) => "Running",
        Ok(v1::OperationPhase::Succeeded) => "Succeeded",
        Ok(v1::OperationPhase::Failed) => "Failed",
        Ok(v1::OperationPhase::Error) => "Error",
        Ok(v1::OperationPhase::Terminating) => "Terminating",
        _ => "-",
    }
}

pub fn outcome_name(code: i32) -> &'static str {
    match v1::CommandOutcome::try_from(code) {
        Ok(v1::CommandOutcome::Pending) => "Pending",
        Ok(v1::CommandOutcome::Delivered) => "Delivered",
        Ok(v1::CommandOutcome::Running) => "Running",
        Ok(v1::CommandOutcome::Succeeded) => "Succeeded",
        Ok(v1::CommandOutcome::Failed) => "Failed",
        Ok(v1::CommandOutcome::Expired) => "Expired",
        Ok(v1::CommandOutcome::Unsupported) => "Unsupported",
        Ok(v1::CommandOutcome::Rejected) => "Rejected",
        _ => "-",
    }
}

/// Whether the app's cluster is reachable; anything else makes its reported health untrustworthy.
pub fn connection_trusted(connection: Option<&v1::ConnectionState>) -> bool {
    match connection {
        None => true,
        Some(c) => matches!(
            v1::ConnectionStateCode::try_from(c.state),
            Ok(v1::ConnectionStateCode::Connected | v1::ConnectionStateCode::Unspecified) | Err(_)
        ),
    }
}

/// The health to show: the reported one while the cluster is connected, else the cluster's
/// connection state (an unreachable cluster's apps are never shown Healthy).
pub fn effective_health(health: i32, connection: Option<&v1::ConnectionState>) -> String {
    match connection {
        Some(c) if !connection_trusted(connection) => connection_name(c.state).to_owned(),
        _ => health_name(health).to_owned(),
    }
}

/// RFC 3339 in UTC to the second (`2025-06-01T12:00:05Z`), or `-`.
pub fn time_text(t: Option<&edgecd_proto::Timestamp>) -> String {
    t.and_then(edgecd_proto::convert::from_timestamp)
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| {
            t.to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}

/// Compares names in natural order: runs of digits by their value, so `gen-2` sorts before
/// `gen-10` and `cluster-9` before `cluster-10`; everything else bytewise.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (run(a), run(b));
                let (da, db) = (&a[..na], &b[..nb]);
                let trim = |d: &'_ [u8]| -> usize { d.iter().take_while(|c| **c == b'0').count() };
                let (va, vb) = (&da[trim(da)..], &db[trim(db)..]);
                let order = va
                    .len()
                    .cmp(&vb.len())
                    .then_with(|| va.cmp(vb))
                    // Equal values: fewer leading zeros first, so the order is total.
                    .then_with(|| na.cmp(&nb));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// `5s`, `3m`, `2h`, `4d` since `t`.
pub fn age(t: Option<&edgecd_proto::Timestamp>, now: OffsetDateTime) -> String {
    let Some(t) = t.and_then(edgecd_proto::convert::from_timestamp) else {
        return "-".into();
    };
    let secs = (now - t).whole_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// The short form of a commit id.
pub fn short_rev(revision: &str) -> String {
    if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        revision[..7].to_owned()
    } else if revision.is_empty() {
        "-".into()
    } else {
        revision.to_owned()
    }
}

pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_owned()
    }
}

/// `a=1,b=2`, sorted.
pub fn labels_text(labels: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    if pairs.is_empty() {
        "-".into()
    } else {
        pairs.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(vec!["NAME", "SYNC", "HEALTH"]);
        table.row(vec!["nginx".into(), "Synced".into(), "Healthy".into()]);
        table.row(vec![
            "cluster-1.nginx".into(),
            "OutOfSync".into(),
            "-".into(),
        ]);
        assert_eq!(
            table.render(),
            "NAME              SYNC        HEALTH\n\
             nginx             Synced      Healthy\n\
             cluster-1.nginx   OutOfSync   -\n"
        );
    }

    #[test]
    fn stale_clusters_hide_the_last_health() {
        let stale = v1::ConnectionState {
            state: v1::ConnectionStateCode::Stale as i32,
            ..Default::default()
        };
        let healthy = v1::HealthStatusCode::Healthy as i32;
        assert_eq!(effective_health(healthy, Some(&stale)), "Stale");
        let connected = v1::ConnectionState {
            state: v1::ConnectionStateCode::Connected as i32,
            ..Default::default()
        };
        assert_eq!(effective_health(healthy, Some(&connected)), "Healthy");
        assert_eq!(effective_health(healthy, None), "Healthy");
    }

    #[test]
    fn ages_and_revisions() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(3);
        let t = edgecd_proto::Timestamp {
            seconds: 3 * 3600 - 125,
            nanos: 0,
        };
        assert_eq!(age(Some(&t), now), "2m");
        assert_eq!(age(None, now), "-");
        assert_eq!(short_rev(&"a".repeat(40)), "aaaaaaa");
        assert_eq!(short_rev("main"), "main");
    }

    #[test]
    fn natural_order() {
        let mut names = vec![
            "gen-10",
            "gen-2",
            "gen-1",
            "cluster-10",
            "cluster-9",
            "gen-02",
            "a",
            "gen-",
            "b1c10",
            "b1c9",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "a",
                "b1c9",
                "b1c10",
                "cluster-9",
                "cluster-10",
                "gen-",
                "gen-1",
                "gen-2",
                "gen-02",
                "gen-10"
            ]
        );
        assert_eq!(natural_cmp("x", "x"), std::cmp::Ordering::Equal);
    }

    #[test]
    fn times_are_readable() {
        let t = edgecd_proto::Timestamp {
            seconds: 1_750_000_000,
            nanos: 123_456_789,
        };
        assert_eq!(time_text(Some(&t)), "2025-06-15T15:06:40Z");
        assert_eq!(time_text(None), "-");
    }

    #[test]
    fn yaml_of_a_view() {
        #[derive(Serialize)]
        struct View {
            name: &'static str,
            replicas: u32,
        }
        let yaml = to_yaml(&View {
            name: "nginx",
            replicas: 3,
        })
        .unwrap_or_default();
        assert_eq!(yaml, "name: nginx\nreplicas: 3\n");
    }
}
