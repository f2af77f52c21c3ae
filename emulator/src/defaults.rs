//! Defaulting of built-in kinds, as a real API server fills in unset fields before storing.

use serde_json::{Map, Value, json};

/// Fills defaults for an object of `group`/`kind` in place.
pub fn apply_defaults(group: &str, kind: &str, obj: &mut Value) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    match (group, kind) {
        ("apps", "Deployment") => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            let strategy = obj_at(spec, "strategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type") == Some(&json!("RollingUpdate")) {
                let ru = obj_at(strategy, "rollingUpdate");
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
            pod_template(spec);
        }
        ("apps", "ReplicaSet") => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "replicas", json!(1));
            pod_template(spec);
        }
        ("apps", "StatefulSet") => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(spec, "revisionHistoryLimit", json!(10));
            let strategy = obj_at(spec, "updateStrategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type") == Some(&json!("RollingUpdate")) {
                set_default(obj_at(strategy, "rollingUpdate"), "partition", json!(0));
            }
            let retention = obj_at(spec, "persistentVolumeClaimRetentionPolicy");
            set_default(retention, "whenDeleted", json!("Retain"));
            set_default(retention, "whenScaled", json!("Retain"));
            pod_template(spec);
        }
        ("apps", "DaemonSet") => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "revisionHistoryLimit", json!(10));
            let strategy = obj_at(spec, "updateStrategy");
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type") == Some(&json!("RollingUpdate")) {
                let ru = obj_at(strategy, "rollingUpdate");
                set_default(ru, "maxUnavailable", json!(1));
                set_default(ru, "maxSurge", json!(0));
            }
            pod_template(spec);
        }
        ("batch", "Job") => {
            let spec = obj_at(obj, "spec");
            job_spec(spec);
        }
        ("batch", "CronJob") => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
            let job = obj_at(spec, "jobTemplate");
            job_spec(obj_at(job, "spec"));
        }
        ("", "Pod") => pod_spec(obj_at(obj, "spec"), true),
        ("", "Service") => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            if spec.get("type") != Some(&json!("ExternalName")) {
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            }
            if spec.get("type") == Some(&json!("LoadBalancer")) {
                set_default(spec, "externalTrafficPolicy", json!("Cluster"));
                set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    port.entry("protocol").or_insert(json!("TCP"));
                    if let Some(p) = port.get("port").cloned() {
                        port.entry("targetPort").or_insert(p);
                    }
                }
            }
        }
        ("", "Namespace") => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "finalizers", json!(["kubernetes"]));
            let status = obj_at(obj, "status");
            set_default(status, "phase", json!("Active"));
            let name = obj
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(name) = name {
                let labels = obj_at(obj_at(obj, "metadata"), "labels");
                set_default(labels, "kubernetes.io/metadata.name", json!(name));
            }
        }
        ("", "Secret") => set_default(obj, "type", json!("Opaque")),
        ("", "PersistentVolumeClaim") => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "volumeMode", json!("Filesystem"));
            let status = obj_at(obj, "status");
            set_default(status, "phase", json!("Pending"));
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            let spec = obj_at(obj, "spec");
            if spec.get("policyTypes").is_none() {
                let mut types = vec![json!("Ingress")];
                if spec.get("egress").is_some() {
                    types.push(json!("Egress"));
                }
                spec.insert("policyTypes".into(), Value::Array(types));
            }
        }
        _ => {}
    }
}

fn job_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "manualSelector", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
        spec.insert("completions".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    pod_template(spec);
}

fn pod_template(spec: &mut Map<String, Value>) {
    let template = obj_at(spec, "template");
    pod_spec(obj_at(template, "spec"), false);
}

fn pod_spec(spec: &mut Map<String, Value>, is_pod: bool) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    if is_pod {
        set_default(spec, "enableServiceLinks", json!(true));
        set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
        set_default(spec, "priority", json!(0));
        set_default(spec, "serviceAccountName", json!("default"));
        set_default(spec, "serviceAccount", json!("default"));
    }
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                container(c);
            }
        }
    }
}

fn container(c: &mut Map<String, Value>) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    if c.get("imagePullPolicy").is_none() {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let last = image.rsplit('/').next().unwrap_or(image);
        let policy = if image.contains('@') {
            "IfNotPresent"
        } else if !last.contains(':') || last.ends_with(":latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("protocol").or_insert(json!("TCP"));
        }
    }
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.into(), value);
    }
}

/// The object at `key`, created (or replaced when not an object) as needed.
fn obj_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(m) => m,
        // The entry was made an object just above.
        _ => unreachable!("entry is an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx:1", "ports": [{"containerPort": 80}]}]}}}});
        apply_defaults("apps", "Deployment", &mut d);
        assert_eq!(d["spec"]["replicas"], json!(1));
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
            json!("25%")
        );
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["ports"][0]["protocol"], json!("TCP"));
        assert_eq!(c["imagePullPolicy"], json!("IfNotPresent"));
        assert_eq!(
            d["spec"]["template"]["spec"]["dnsPolicy"],
            json!("ClusterFirst")
        );
    }
}
