//! Live reads through the app's spoke: `app resources` (the live tree), `app manifest KIND/NAME`, `app events KIND/NAME`, `app logs [KIND/NAME] [-f]`; a resource is named as kubectl names it and resolved against the app's tree.

use std::io::Write as _;

use edgecd_proto::client::Client;
use edgecd_proto::v1;
use futures::StreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;

use crate::args::{LogsArgs, Output};
use crate::exit::{Exit, NOT_FOUND};
use crate::output::{Table, age, health_name, or_dash, print_structured, sync_name, time_text};

use super::appref::{app_ref, display};

/// The kind a kubectl-style name means (`deploy`, `pods`, `Deployment` …), lower-case.
fn kind_alias(kind: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    let canonical = match kind.as_str() {
        "po" | "pods" => "pod",
        "deploy" | "deployments" => "deployment",
        "rs" | "replicasets" => "replicaset",
        "sts" | "statefulsets" => "statefulset",
        "ds" | "daemonsets" => "daemonset",
        "svc" | "services" => "service",
        "cm" | "configmaps" => "configmap",
        "jobs" => "job",
        "cj" | "cronjobs" => "cronjob",
        "ing" | "ingresses" => "ingress",
        "ns" | "namespaces" => "namespace",
        "secrets" => "secret",
        other => other,
    };
    canonical.to_owned()
}

/// The app's live tree.
pub(super) async fn tree(
    client: &Client,
    app: &v1::AppRef,
) -> anyhow::Result<Vec<v1::ResourceNodeInfo>> {
    Ok(client
        .get_resource_tree(v1::GetResourceTreeRequest {
            app: Some(app.clone()),
        })
        .await?
        .nodes)
}

/// The resource `name` (`KIND/NAME`) of the app's tree.
pub(super) fn resolve(
    nodes: &[v1::ResourceNodeInfo],
    app: &v1::AppRef,
    name: &str,
    namespace: Option<&str>,
) -> anyhow::Result<v1::ResourceKey> {
    let Some((kind, object)) = name.split_once('/') else {
        anyhow::bail!(Exit::usage(format!(
            "{name:?} is not KIND/NAME (e.g. deployment/web, pod/web-7d9c-x2l)"
        )));
    };
    let kind = kind_alias(kind);
    let matches: Vec<&v1::ResourceKey> = nodes
        .iter()
        .filter_map(|n| n.key.as_ref())
        .filter(|k| k.kind.to_ascii_lowercase() == kind && k.name == object)
        .filter(|k| namespace.is_none_or(|ns| k.namespace == ns))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => anyhow::bail!(Exit::new(
            NOT_FOUND,
            format!(
                "{} has no {name}{} in its live tree (see `edgecd app resources {}`)",
                display(app),
                namespace
                    .map(|ns| format!(" in namespace {ns}"))
                    .unwrap_or_default(),
                display(app)
            )
        )),
        several => {
            let namespaces: Vec<&str> = several.iter().map(|k| k.namespace.as_str()).collect();
            anyhow::bail!(Exit::usage(format!(
                "{} has {name} in several namespaces ({}): pick one with -n",
                display(app),
                namespaces.join(", ")
            )))
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeView {
    kind: String,
    namespace: String,
    name: String,
    sync: String,
    health: String,
    info: std::collections::BTreeMap<String, String>,
}

pub async fn resources(client: &Client, output: Output, app: &v1::AppRef) -> anyhow::Result<()> {
    let nodes = tree(client, app).await?;
    let mut views: Vec<NodeView> = nodes
        .iter()
        .filter_map(|n| {
            let key = n.key.as_ref()?;
            Some(NodeView {
                kind: key.kind.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                sync: sync_name(n.sync).to_owned(),
                health: n
                    .health
                    .as_ref()
                    .map_or("-", |h| health_name(h.status))
                    .to_owned(),
                info: n.info.clone().into_iter().collect(),
            })
        })
        .collect();
    views.sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    if print_structured(output, &views)? {
        return Ok(());
    }
    if views.is_empty() {
        noteln!("{} has no live resources reported yet", display(app));
        return Ok(());
    }
    let mut table = Table::new(vec!["RESOURCE", "NAMESPACE", "SYNC", "HEALTH", "INFO"]);
    for v in &views {
        let info: Vec<String> = v.info.iter().map(|(k, v)| format!("{k}={v}")).collect();
        table.row(vec![
            format!("{}/{}", v.kind.to_ascii_lowercase(), v.name),
            or_dash(&v.namespace),
            v.sync.clone(),
            v.health.clone(),
            or_dash(&info.join(" ")),
        ]);
    }
    out!("{}", table.render())?;
    Ok(())
}

pub async fn manifest(
    client: &Client,
    app: &v1::AppRef,
    resource: &str,
    namespace: Option<&str>,
    managed_fields: bool,
) -> anyhow::Result<()> {
    let key = resolve(&tree(client, app).await?, app, resource, namespace)?;
    let manifest = client
        .get_live_manifest(v1::GetLiveManifestRequest {
            app: Some(app.clone()),
            resource: Some(key),
            managed_fields,
        })
        .await?;
    out!("{}", manifest.yaml)?;
    Ok(())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EventView {
    time: String,
    severity: &'static str,
    object: String,
    reason: String,
    message: String,
}

pub async fn events(
    client: &Client,
    output: Output,
    app: &v1::AppRef,
    resource: &str,
    namespace: Option<&str>,
) -> anyhow::Result<()> {
    let key = resolve(&tree(client, app).await?, app, resource, namespace)?;
    let events = client
        .list_live_events(v1::ListLiveEventsRequest {
            app: Some(app.clone()),
            resource: Some(key),
        })
        .await?
        .items;
    let views: Vec<EventView> = events
        .iter()
        .map(|e| EventView {
            time: time_text(e.time.as_ref()),
            severity: if e.severity == v1::EventSeverity::Warning as i32 {
                "Warning"
            } else {
                "Normal"
            },
            object: e
                .resource
                .as_ref()
                .map(|r| format!("{}/{}", r.kind.to_ascii_lowercase(), r.name))
                .unwrap_or_default(),
            reason: e.reason.clone(),
            message: e.message.clone(),
        })
        .collect();
    if print_structured(output, &views)? {
        return Ok(());
    }
    if views.is_empty() {
        noteln!("No events for {resource}.");
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let mut table = Table::new(vec!["AGE", "TYPE", "OBJECT", "REASON", "MESSAGE"]);
    for (v, e) in views.iter().zip(&events) {
        table.row(vec![
            age(e.time.as_ref(), now),
            v.severity.to_owned(),
            v.object.clone(),
            v.reason.clone(),
            v.message.clone(),
        ]);
    }
    out!("{}", table.render())?;
    Ok(())
}

/// The app's only workload, for `app logs` without a resource.
pub(super) fn only_workload(
    nodes: &[v1::ResourceNodeInfo],
    app: &v1::AppRef,
) -> anyhow::Result<v1::ResourceKey> {
    let workloads: Vec<&v1::ResourceKey> = nodes
        .iter()
        .filter_map(|n| n.key.as_ref())
        .filter(|k| {
            matches!(
                (k.group.as_str(), k.kind.as_str()),
                ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job")
            )
        })
        .collect();
    match workloads.as_slice() {
        [one] => Ok((*one).clone()),
        [] => anyhow::bail!(Exit::new(
            NOT_FOUND,
            format!(
                "{} has no workload; name a pod: edgecd app logs {} pod/NAME",
                display(app),
                display(app)
            )
        )),
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|k| format!("{}/{}", k.kind.to_ascii_lowercase(), k.name))
                .collect();
            anyhow::bail!(Exit::usage(format!(
                "{} has several workloads ({}): name one",
                display(app),
                names.join(", ")
            )))
        }
    }
}

pub async fn logs(client: &Client, args: LogsArgs) -> anyhow::Result<()> {
    let app = app_ref(&args.app.name, args.project.as_deref())?;
    let nodes = tree(client, &app).await?;
    let key = match &args.resource {
        Some(resource) => resolve(&nodes, &app, resource, args.namespace.as_deref())?,
        None => only_workload(&nodes, &app)?,
    };
    let several_pods = !(key.group.is_empty() && key.kind == "Pod");
    let mut stream = client
        .stream_pod_logs(v1::StreamPodLogsRequest {
            app: Some(app.clone()),
            resource: Some(key),
            container: args.container.clone().unwrap_or_default(),
            since_seconds: args
                .since
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            tail_lines: args.tail.map_or(0, i64::from),
            previous: args.previous,
            follow: args.follow,
        })
        .await?;
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let written = if several_pods {
            // Each line names its pod, as `kubectl logs --prefix` does.
            let text = String::from_utf8_lossy(&chunk.data);
            text.lines().try_for_each(|line| {
                writeln!(stdout, "[pod/{}/{}] {line}", chunk.pod, chunk.container)
            })
        } else {
            stdout.write_all(&chunk.data)
        };
        match written.and_then(|()| stdout.flush()) {
            Ok(()) => {}
            // A closed pipe (`| head`) ends the command quietly; the session is cancelled at the spoke.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: &str, namespace: &str, name: &str) -> v1::ResourceNodeInfo {
        v1::ResourceNodeInfo {
            key: Some(v1::ResourceKey {
                group: if kind == "Deployment" {
                    "apps".into()
                } else {
                    String::new()
                },
                version: "v1".into(),
                kind: kind.into(),
                namespace: namespace.into(),
                name: name.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn resources_are_named_as_kubectl_names_them() {
        let app = v1::AppRef::new("default", "web");
        let nodes = [
            node("Deployment", "web", "web"),
            node("Pod", "web", "web-1"),
            node("ConfigMap", "a", "conf"),
            node("ConfigMap", "b", "conf"),
        ];
        for name in ["deploy/web", "Deployment/web", "deployments/web"] {
            assert_eq!(
                resolve(&nodes, &app, name, None).unwrap().kind,
                "Deployment"
            );
        }
        assert_eq!(
            resolve(&nodes, &app, "po/web-1", None).unwrap().name,
            "web-1"
        );
        let ambiguous = resolve(&nodes, &app, "cm/conf", None).unwrap_err();
        assert!(ambiguous.to_string().contains("-n"), "{ambiguous}");
        assert_eq!(
            resolve(&nodes, &app, "cm/conf", Some("b"))
                .unwrap()
                .namespace,
            "b"
        );
        let missing = resolve(&nodes, &app, "pod/nope", None).unwrap_err();
        assert_eq!(
            missing.downcast_ref::<Exit>().map(|e| e.code),
            Some(NOT_FOUND)
        );
        assert!(resolve(&nodes, &app, "web", None).is_err());
        assert_eq!(only_workload(&nodes, &app).unwrap().name, "web");
    }
}
