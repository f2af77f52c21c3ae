//! `edgecd history`: the fleet's deployment record (every sync and rollback on every cluster), filtered by cluster, project, app, user, time and result, newest first.

use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use futures::TryStreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::{DeploymentResult, HistoryArgs, Output};
use crate::exit::Exit;
use crate::output::{Table, age, or_dash, phase_name, print_structured, short_rev, time_text};
use crate::session::Session;

/// One deployment as `-o json|yaml` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentView {
    cluster: String,
    project: String,
    app: String,
    history_id: i64,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_of: Option<i64>,
    result: &'static str,
    from_revision: String,
    to_revision: String,
    initiated_by: String,
    automated: bool,
    started_at: String,
    finished_at: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    trace_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    command_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
}

impl From<&v1::Deployment> for DeploymentView {
    fn from(d: &v1::Deployment) -> Self {
        let app = d.app.clone().unwrap_or_default();
        let rollback = d.kind == v1::DeploymentKind::Rollback as i32;
        Self {
            cluster: d.cluster.clone(),
            project: app.project,
            app: app.name,
            history_id: d.history_id,
            kind: if rollback { "rollback" } else { "sync" },
            rollback_of: rollback.then_some(d.rollback_of),
            result: phase_name(d.result),
            from_revision: d.from_revision.clone(),
            to_revision: d.to_revision.clone(),
            initiated_by: d.initiated_by.clone(),
            automated: d.automated,
            started_at: time_text(d.started_at.as_ref()),
            finished_at: time_text(d.finished_at.as_ref()),
            trace_id: d.trace_id.clone(),
            command_id: d.command_id.clone(),
            message: d.message.clone(),
        }
    }
}

/// The request `args` ask for.
fn request(args: &HistoryArgs) -> anyhow::Result<v1::ListDeploymentsRequest> {
    let (project, app) = match (args.app.as_deref(), args.project.clone()) {
        (Some(app), project) => match app.split_once('/') {
            Some((p, n)) => {
                if project.as_deref().is_some_and(|flag| flag != p) {
                    anyhow::bail!(Exit::usage(format!(
                        "--app {app:?} names project {p:?} but --project is {:?}",
                        project.unwrap_or_default()
                    )));
                }
                (p.to_owned(), n.to_owned())
            }
            None => (project.unwrap_or_default(), app.to_owned()),
        },
        (None, project) => (project.unwrap_or_default(), String::new()),
    };
    let results = args
        .result
        .iter()
        .map(|r| match r {
            DeploymentResult::Succeeded => v1::OperationPhase::Succeeded as i32,
            DeploymentResult::Failed => v1::OperationPhase::Failed as i32,
            DeploymentResult::Error => v1::OperationPhase::Error as i32,
        })
        .collect();
    Ok(v1::ListDeploymentsRequest {
        cluster: args.cluster.clone().unwrap_or_default(),
        project,
        app,
        initiated_by: args.user.clone().unwrap_or_default(),
        results,
        since: args.since.map(pc::timestamp),
        until: args.until.map(pc::timestamp),
        page_size: match args.limit {
            0 => 1000,
            n => u32::try_from(n).unwrap_or(1000).min(1000),
        },
        page_token: String::new(),
    })
}

pub async fn run(session: &Session, args: HistoryArgs) -> anyhow::Result<()> {
    let output = session.global.output;
    let client = session.client().await?;
    let stream = client.deployments(request(&args)?);
    let deployments: Vec<v1::Deployment> = if args.limit == 0 {
        stream.try_collect().await?
    } else {
        futures::StreamExt::take(stream, args.limit)
            .try_collect()
            .await?
    };
    let views: Vec<DeploymentView> = deployments.iter().map(DeploymentView::from).collect();
    if print_structured(output, &views)? {
        return Ok(());
    }
    if views.is_empty() {
        noteln!("No deployments match.");
        return Ok(());
    }
    let wide = output == Output::Wide;
    let mut headers = vec![
        "FINISHED", "AGE", "CLUSTER", "APP", "KIND", "FROM", "TO", "RESULT", "BY",
    ];
    if wide {
        headers.extend(["DURATION", "TRACE ID", "MESSAGE"]);
    }
    let now = OffsetDateTime::now_utc();
    let mut table = Table::new(headers);
    for (v, d) in views.iter().zip(&deployments) {
        let kind = match v.rollback_of {
            Some(id) => format!("rollback to {id}"),
            None => v.kind.to_owned(),
        };
        let mut row = vec![
            v.finished_at.clone(),
            age(d.finished_at.as_ref(), now),
            v.cluster.clone(),
            format!("{}/{}", v.project, v.app),
            kind,
            short_rev(&v.from_revision),
            short_rev(&v.to_revision),
            v.result.to_owned(),
            or_dash(&v.initiated_by),
        ];
        if wide {
            let took = d
                .started_at
                .as_ref()
                .zip(d.finished_at.as_ref())
                .and_then(|(s, f)| Some(pc::from_timestamp(f)? - pc::from_timestamp(s)?))
                .map(|t| format!("{}s", t.whole_seconds().max(0)))
                .unwrap_or_else(|| "-".into());
            row.extend([took, or_dash(&v.trace_id), or_dash(&v.message)]);
        }
        table.row(row);
    }
    out!("{}", table.render())?;
    if deployments.len() == args.limit && args.limit > 0 {
        noteln!(
            "Showing the newest {}: narrow the filters, or pass --limit 0 for all.",
            args.limit
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(line: &[&str]) -> HistoryArgs {
        let mut argv = vec!["edgecd", "history"];
        argv.extend_from_slice(line);
        match crate::args::Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(crate::args::Command::History(args)) => args,
            other => panic!("not history: {other:?}"),
        }
    }

    #[test]
    fn filters_become_the_request() {
        let req = request(&args(&[
            "--app",
            "web/cache",
            "-u",
            "alice",
            "--limit",
            "0",
        ]))
        .unwrap();
        assert_eq!((req.project.as_str(), req.app.as_str()), ("web", "cache"));
        assert_eq!(req.initiated_by, "alice");
        assert_eq!(req.page_size, 1000);
        let req = request(&args(&["--app", "cache", "--result", "failed"])).unwrap();
        assert_eq!((req.project.as_str(), req.app.as_str()), ("", "cache"));
        assert_eq!(req.results, [v1::OperationPhase::Failed as i32]);
        assert_eq!(req.page_size, 50);
        let clash = request(&args(&["--app", "web/cache", "-p", "other"])).unwrap_err();
        assert!(clash.to_string().contains("--project"), "{clash}");
    }
}
