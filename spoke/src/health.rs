//! Health assessment of live Kubernetes objects per kind, as Argo CD defines it: Healthy, Progressing, Degraded, Suspended (Missing is decided by the caller).

use edgecd_core::Health;
use edgecd_core::app::HealthReport;
use serde_json::Value;

/// Pod waiting reasons that will not resolve by waiting.
const BROKEN_WAITING_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

/// Assesses one live object. `None` means the kind has no health of its own
/// (ConfigMap, Secret, RBAC objects, …) and does not affect the app.
pub fn assess(obj: &Value) -> Option<HealthReport> {
    let api_version = str_at(obj, &["apiVersion"]);
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = str_at(obj, &["kind"]);
    match (group, kind) {
        ("apps", "Deployment") => Some(deployment(obj)),
        ("apps", "StatefulSet") => Some(stateful_set(obj)),
        ("apps", "DaemonSet") => Some(daemon_set(obj)),
        ("apps", "ReplicaSet") => Some(replica_set(obj)),
        ("", "Pod") => Some(pod(obj)),
        ("batch", "Job") => Some(job(obj)),
        ("batch", "CronJob") => Some(cron_job(obj)),
        ("", "Service") => Some(service(obj)),
        ("networking.k8s.io", "Ingress") => Some(load_balanced(obj, "Ingress")),
        ("", "PersistentVolumeClaim") => Some(pvc(obj)),
        ("", "Namespace") => Some(namespace(obj)),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Some(crd(obj)),
        ("edgecd.io" | "argoproj.io", "Application") => application(obj),
        _ => conditions(obj),
    }
}

fn report(status: Health, message: impl Into<String>) -> HealthReport {
    HealthReport {
        status,
        message: message.into(),
    }
}

fn healthy() -> HealthReport {
    report(Health::Healthy, "")
}

fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, key| v.get(*key))
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    at(obj, path).and_then(Value::as_str).unwrap_or("")
}

fn int_at(obj: &Value, path: &[&str]) -> Option<i64> {
    at(obj, path).and_then(Value::as_i64)
}

fn bool_at(obj: &Value, path: &[&str]) -> bool {
    at(obj, path).and_then(Value::as_bool).unwrap_or(false)
}

/// The condition of `type` in `status.conditions`, as (status, reason, message).
fn condition<'a>(obj: &'a Value, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    at(obj, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .map(|c| {
            (
                str_at(c, &["status"]),
                str_at(c, &["reason"]),
                str_at(c, &["message"]),
            )
        })
}

/// Whether the controller has seen the latest spec.
fn generation_observed(obj: &Value) -> bool {
    match (
        int_at(obj, &["metadata", "generation"]),
        int_at(obj, &["status", "observedGeneration"]),
    ) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        _ => true,
    }
}

fn deployment(obj: &Value) -> HealthReport {
    if bool_at(obj, &["spec", "paused"]) {
        return report(Health::Suspended, "Deployment is paused");
    }
    let name = str_at(obj, &["metadata", "name"]);
    if !generation_observed(obj) {
        return report(
            Health::Progressing,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    if let Some(("False", "ProgressDeadlineExceeded", _)) = condition(obj, "Progressing") {
        return report(
            Health::Degraded,
            format!("Deployment {name:?} exceeded its progress deadline"),
        );
    }
    let wanted = int_at(obj, &["spec", "replicas"]).unwrap_or(1);
    let updated = int_at(obj, &["status", "updatedReplicas"]).unwrap_or(0);
    let replicas = int_at(obj, &["status", "replicas"]).unwrap_or(0);
    let available = int_at(obj, &["status", "availableReplicas"]).unwrap_or(0);
    if updated < wanted {
        report(
            Health::Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated..."
            ),
        )
    } else if replicas > updated {
        report(
            Health::Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
        )
    } else if available < updated {
        report(
            Health::Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        )
    } else {
        healthy()
    }
}

fn stateful_set(obj: &Value) -> HealthReport {
    if !generation_observed(obj) {
        return report(
            Health::Progressing,
            "Waiting for statefulset spec update to be observed...",
        );
    }
    let wanted = int_at(obj, &["spec", "replicas"]).unwrap_or(1);
    let ready = int_at(obj, &["status", "readyReplicas"]).unwrap_or(0);
    if ready < wanted {
        return report(
            Health::Progressing,
            format!("Waiting for {} pods to be ready...", wanted - ready),
        );
    }
    if str_at(obj, &["spec", "updateStrategy", "type"]) == "OnDelete" {
        return report(
            Health::Healthy,
            "statefulset has OnDelete update strategy: rollout is not tracked",
        );
    }
    let partition = int_at(
        obj,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
    )
    .unwrap_or(0);
    if partition > 0 {
        let updated = int_at(obj, &["status", "updatedReplicas"]).unwrap_or(0);
        if updated < wanted - partition {
            return report(
                Health::Progressing,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                    wanted - partition
                ),
            );
        }
        return healthy();
    }
    let current = str_at(obj, &["status", "currentRevision"]);
    let update = str_at(obj, &["status", "updateRevision"]);
    if !update.is_empty() && current != update {
        return report(
            Health::Progressing,
            "waiting for statefulset rolling update to complete",
        );
    }
    healthy()
}

fn daemon_set(obj: &Value) -> HealthReport {
    if !generation_observed(obj) {
        return report(
            Health::Progressing,
            "Waiting for daemon set spec update to be observed...",
        );
    }
    if str_at(obj, &["spec", "updateStrategy", "type"]) == "OnDelete" {
        return report(
            Health::Healthy,
            "daemon set has OnDelete update strategy: rollout is not tracked",
        );
    }
    let desired = int_at(obj, &["status", "desiredNumberScheduled"]).unwrap_or(0);
    let updated = int_at(obj, &["status", "updatedNumberScheduled"]).unwrap_or(0);
    let available = int_at(obj, &["status", "numberAvailable"]).unwrap_or(0);
    if updated < desired {
        report(
            Health::Progressing,
            format!(
                "Waiting for daemon set rollout to finish: {updated} out of {desired} new pods have been updated..."
            ),
        )
    } else if available < desired {
        report(
            Health::Progressing,
            format!(
                "Waiting for daemon set rollout to finish: {available} of {desired} updated pods are available..."
            ),
        )
    } else {
        healthy()
    }
}

fn replica_set(obj: &Value) -> HealthReport {
    if !generation_observed(obj) {
        return report(
            Health::Progressing,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        );
    }
    if let Some(("True", _, message)) = condition(obj, "ReplicaFailure") {
        return report(Health::Degraded, message);
    }
    let wanted = int_at(obj, &["spec", "replicas"]).unwrap_or(1);
    let available = int_at(obj, &["status", "availableReplicas"]).unwrap_or(0);
    if available < wanted {
        return report(
            Health::Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {wanted} new replicas are available..."
            ),
        );
    }
    healthy()
}

fn container_statuses(obj: &Value) -> impl Iterator<Item = &Value> {
    ["initContainerStatuses", "containerStatuses"]
        .into_iter()
        .filter_map(|key| at(obj, &["status", key]).and_then(Value::as_array))
        .flatten()
}

fn pod(obj: &Value) -> HealthReport {
    // A container stuck in a state that waiting will not fix is Degraded,
    // whatever the phase says.
    for status in container_statuses(obj) {
        let reason = str_at(status, &["state", "waiting", "reason"]);
        if BROKEN_WAITING_REASONS.contains(&reason) {
            let message = str_at(status, &["state", "waiting", "message"]);
            let name = str_at(status, &["name"]);
            return report(
                Health::Degraded,
                if message.is_empty() {
                    format!("container {name:?}: {reason}")
                } else {
                    format!("container {name:?}: {reason}: {message}")
                },
            );
        }
    }
    match str_at(obj, &["status", "phase"]) {
        "Succeeded" => healthy(),
        "Failed" => report(Health::Degraded, str_at(obj, &["status", "message"])),
        "Running" => {
            let restart_policy = str_at(obj, &["spec", "restartPolicy"]);
            let ready = matches!(condition(obj, "Ready"), Some(("True", _, _)));
            if ready || restart_policy == "Never" || restart_policy == "OnFailure" {
                healthy()
            } else {
                report(Health::Progressing, "Waiting for the pod to become ready")
            }
        }
        "Pending" | "" => report(Health::Progressing, str_at(obj, &["status", "message"])),
        other => report(Health::Unknown, format!("pod phase {other}")),
    }
}

fn job(obj: &Value) -> HealthReport {
    if let Some(("True", reason, message)) = condition(obj, "Failed") {
        return report(
            Health::Degraded,
            if message.is_empty() { reason } else { message },
        );
    }
    if let Some(("True", _, _)) = condition(obj, "Complete") {
        return healthy();
    }
    if bool_at(obj, &["spec", "suspend"]) {
        return report(Health::Suspended, "Job is suspended");
    }
    report(Health::Progressing, "Job is running")
}

fn cron_job(obj: &Value) -> HealthReport {
    if bool_at(obj, &["spec", "suspend"]) {
        return report(Health::Suspended, "CronJob is suspended");
    }
    healthy()
}

fn service(obj: &Value) -> HealthReport {
    if str_at(obj, &["spec", "type"]) == "LoadBalancer" {
        return load_balanced(obj, "Service");
    }
    healthy()
}

fn load_balanced(obj: &Value, what: &str) -> HealthReport {
    let has_ingress = at(obj, &["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .is_some_and(|list| !list.is_empty());
    if has_ingress {
        healthy()
    } else {
        report(
            Health::Progressing,
            format!("{what} is waiting for a load balancer address"),
        )
    }
}

fn pvc(obj: &Value) -> HealthReport {
    match str_at(obj, &["status", "phase"]) {
        "Bound" => healthy(),
        "Lost" => report(Health::Degraded, "PersistentVolumeClaim lost its volume"),
        _ => report(Health::Progressing, "Waiting for the claim to be bound"),
    }
}

fn namespace(obj: &Value) -> HealthReport {
    match str_at(obj, &["status", "phase"]) {
        "Terminating" => report(Health::Progressing, "Namespace is terminating"),
        _ => healthy(),
    }
}

fn crd(obj: &Value) -> HealthReport {
    if let Some(("False", _, message)) = condition(obj, "NamesAccepted") {
        return report(Health::Degraded, message);
    }
    match condition(obj, "Established") {
        Some(("True", _, _)) => healthy(),
        _ => report(
            Health::Progressing,
            "Waiting for the CustomResourceDefinition to be established",
        ),
    }
}

fn application(obj: &Value) -> Option<HealthReport> {
    let status = str_at(obj, &["status", "health", "status"]);
    let health = Health::parse(status).unwrap_or(Health::Unknown);
    Some(report(
        health,
        str_at(obj, &["status", "health", "message"]),
    ))
}

/// Custom resources: the common condition conventions (kstatus `Stalled` /
/// `Reconciling`, and `Ready`/`Available`/`Healthy`/`Succeeded`).
fn conditions(obj: &Value) -> Option<HealthReport> {
    at(obj, &["status", "conditions"])?.as_array()?;
    if let Some(("True", reason, message)) = condition(obj, "Stalled") {
        return Some(report(
            Health::Degraded,
            if message.is_empty() { reason } else { message },
        ));
    }
    if let Some(("True", _, message)) = condition(obj, "Reconciling") {
        return Some(report(Health::Progressing, message));
    }
    for kind in ["Ready", "Available", "Healthy", "Succeeded"] {
        match condition(obj, kind) {
            Some(("True", _, message)) => return Some(report(Health::Healthy, message)),
            Some(("False", reason, message)) => {
                return Some(report(
                    Health::Degraded,
                    if message.is_empty() { reason } else { message },
                ));
            }
            Some((_, _, message)) => return Some(report(Health::Progressing, message)),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn health(obj: Value) -> Health {
        assess(&obj).map(|r| r.status).unwrap_or(Health::Healthy)
    }

    #[test]
    fn deployments() {
        let base = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "generation": 2},
                   "spec": {"replicas": 3}, "status": status})
        };
        assert_eq!(
            health(base(
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3})
            )),
            Health::Healthy
        );
        assert_eq!(
            health(base(
                json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3})
            )),
            Health::Progressing
        );
        assert_eq!(
            health(base(
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1})
            )),
            Health::Progressing
        );
        let stuck = assess(&base(json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]})))
        .unwrap();
        assert_eq!(stuck.status, Health::Degraded);
        assert!(
            stuck.message.contains("progress deadline"),
            "{}",
            stuck.message
        );
        let mut paused = base(json!({}));
        paused["spec"]["paused"] = json!(true);
        assert_eq!(health(paused), Health::Suspended);
    }

    #[test]
    fn pods() {
        let crash = json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Running",
            "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m"}}}]}});
        let r = assess(&crash).unwrap();
        assert_eq!(r.status, Health::Degraded);
        assert!(r.message.contains("CrashLoopBackOff"));
        let ready = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"restartPolicy": "Always"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(health(ready), Health::Healthy);
        let pending = json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Pending"}});
        assert_eq!(health(pending), Health::Progressing);
        let failed = json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Failed"}});
        assert_eq!(health(failed), Health::Degraded);
    }

    #[test]
    fn workloads_and_others() {
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1},
            "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "readyReplicas": 2,
            "currentRevision": "a", "updateRevision": "a"}});
        assert_eq!(health(sts), Health::Healthy);
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 1},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}});
        assert_eq!(health(ds), Health::Progressing);
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}});
        assert_eq!(health(job), Health::Degraded);
        let lb = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {}});
        assert_eq!(health(lb), Health::Progressing);
        let lb_ready = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}});
        assert_eq!(health(lb_ready), Health::Healthy);
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}});
        assert_eq!(health(pvc), Health::Progressing);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert!(assess(&cm).is_none());
        let cr = json!({"apiVersion": "example.com/v1", "kind": "Cache",
            "status": {"conditions": [{"type": "Ready", "status": "False", "message": "disk full"}]}});
        let r = assess(&cr).unwrap();
        assert_eq!(
            (r.status, r.message.as_str()),
            (Health::Degraded, "disk full")
        );
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(health(crd), Health::Healthy);
    }
}
