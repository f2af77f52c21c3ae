//! kubectl against both back ends: one kubectl session (kubectl built from the Kubernetes modules at realkube's release) run against the emulator and against a real API server (testkit's `RealCluster`), comparing exit codes, output and the resulting objects (defaulted fields, managedFields managers) step by step.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_testkit::{RealCluster, realkube};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

const NS: &str = "kc-demo";

/// What one kubectl run gave.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// kubectl with one kubeconfig.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    editor: PathBuf,
}

impl Kubectl {
    fn new(bin: &Path, kubeconfig: &Path, dir: &Path) -> Self {
        // `kubectl edit` runs $KUBE_EDITOR on a temp file: change `a: "2"` to `a: "3"`.
        let editor = dir.join("editor.sh");
        std::fs::write(
            &editor,
            "#!/bin/sh\nsed -i 's/^  a: \"2\"$/  a: \"3\"/' \"$1\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Self {
            bin: bin.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
            editor,
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBE_EDITOR", &self.editor)
            .env("HOME", self.editor.parent().unwrap())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).await.unwrap();
            drop(pipe);
        }
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in 120 s"))
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kubectl get … -o json --show-managed-fields`, parsed.
    async fn get(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
        let out = self.run(&all, None).await;
        assert_eq!(out.code, 0, "kubectl {all:?}: {}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }
}

/// `manager:Operation[:subresource]` of kubectl's managedFields entries, sorted (controllers write
/// status under their own names: `edgecd-emulator-controller`, `realkube`, `kube-controller-manager`).
fn managers(obj: &Value) -> Vec<String> {
    let set: BTreeSet<String> = obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| {
                    e["manager"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("kubectl"))
                })
                .map(|e| {
                    let mut s = format!(
                        "{}:{}",
                        e["manager"].as_str().unwrap_or(""),
                        e["operation"].as_str().unwrap_or("")
                    );
                    if let Some(sub) = e["subresource"].as_str() {
                        s.push_str(&format!(":{sub}"));
                    }
                    s
                })
                .collect()
        })
        .unwrap_or_default();
    set.into_iter().collect()
}

/// The exit code and the trimmed stdout lines (sorted: kubectl prints applied objects in file order,
/// but sorting keeps the comparison about content).
fn outcome(out: &Out) -> Value {
    let mut lines: Vec<&str> = out.stdout.lines().map(str::trim_end).collect();
    lines.sort_unstable();
    json!({ "code": out.code, "stdout": lines })
}

/// A table's lines with the AGE column (always last here) removed and runs of spaces collapsed.
fn table_without_age(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split_whitespace().collect();
            cells.pop();
            cells.join(" ")
        })
        .collect()
}

const APP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: kc-demo
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: kc-demo
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: kc-demo
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
"#;

/// The session; every step's comparable outcome, in order.
#[allow(clippy::too_many_lines)]
async fn session(k: &Kubectl) -> Vec<(&'static str, Value)> {
    let mut steps: Vec<(&'static str, Value)> = Vec::new();

    // Typed create: kubectl sends protobuf.
    let out = k.run(&["create", "namespace", NS], None).await;
    steps.push(("create namespace", outcome(&out)));
    let ns = k.get(&["namespace", NS]).await;
    steps.push((
        "namespace as created",
        json!({
            "labels": ns["metadata"]["labels"],
            "spec": ns["spec"],
            "phase": ns["status"]["phase"],
            "managers": managers(&ns),
        }),
    ));
    let out = k
        .run(
            &[
                "create",
                "configmap",
                "literal",
                "--from-literal=k=v",
                "-n",
                NS,
            ],
            None,
        )
        .await;
    steps.push(("create configmap", outcome(&out)));
    let cm = k.get(&["configmap", "literal", "-n", NS]).await;
    steps.push((
        "configmap as created",
        json!({ "data": cm["data"], "managers": managers(&cm) }),
    ));

    // Client-side apply: creates, with the last-applied annotation.
    let out = k.run(&["apply", "-f", "-"], Some(APP)).await;
    steps.push(("apply (create)", outcome(&out)));
    let cm = k.get(&["configmap", "web-config", "-n", NS]).await;
    let last_applied: Value = serde_json::from_str(
        cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap_or("null"),
    )
    .unwrap();
    steps.push((
        "configmap after apply",
        json!({ "data": cm["data"], "lastApplied": last_applied, "managers": managers(&cm) }),
    ));
    let d = k.get(&["deployment", "web", "-n", NS]).await;
    let mut spec = d["spec"].clone();
    spec["template"]["metadata"]
        .as_object_mut()
        .map(|m| m.remove("creationTimestamp"));
    steps.push((
        "deployment defaults",
        json!({ "spec": spec, "generation": d["metadata"]["generation"], "managers": managers(&d) }),
    ));
    let svc = k.get(&["service", "web", "-n", NS]).await;
    let mut spec = svc["spec"].clone();
    spec.as_object_mut().map(|m| {
        m.remove("clusterIP");
        m.remove("clusterIPs")
    });
    steps.push((
        "service defaults",
        json!({ "spec": spec, "managers": managers(&svc) }),
    ));
    let out = k
        .run(
            &[
                "rollout",
                "status",
                "deployment/web",
                "-n",
                NS,
                "--timeout=90s",
            ],
            None,
        )
        .await;
    steps.push(("rollout status", json!({ "code": out.code })));

    // Apply again with a change: only the ConfigMap is configured.
    let out = k
        .run(
            &["apply", "-f", "-"],
            Some(&APP.replace("a: \"1\"", "a: \"2\"")),
        )
        .await;
    steps.push(("apply (configure)", outcome(&out)));

    // The three patch types, label, edit, scale: each recorded under kubectl's manager name.
    for (what, args) in [
        (
            "patch strategic",
            vec![
                "patch",
                "configmap",
                "web-config",
                "-n",
                NS,
                "-p",
                r#"{"data":{"b":"2"}}"#,
            ],
        ),
        (
            "patch merge",
            vec![
                "patch",
                "configmap",
                "web-config",
                "-n",
                NS,
                "--type=merge",
                "-p",
                r#"{"data":{"c":"3"}}"#,
            ],
        ),
        (
            "patch json",
            vec![
                "patch",
                "configmap",
                "web-config",
                "-n",
                NS,
                "--type=json",
                "-p",
                r#"[{"op":"add","path":"/data/d","value":"4"},{"op":"test","path":"/data/a","value":"2"}]"#,
            ],
        ),
        (
            "label",
            vec!["label", "configmap", "web-config", "-n", NS, "tier=web"],
        ),
        ("edit", vec!["edit", "configmap", "web-config", "-n", NS]),
    ] {
        let out = k.run(&args, None).await;
        let cm = k.get(&["configmap", "web-config", "-n", NS]).await;
        steps.push((
            what,
            json!({
                "out": outcome(&out),
                "data": cm["data"],
                "labels": cm["metadata"]["labels"],
                "managers": managers(&cm),
            }),
        ));
    }
    let out = k
        .run(
            &["scale", "deployment", "web", "-n", NS, "--replicas=2"],
            None,
        )
        .await;
    let d = k.get(&["deployment", "web", "-n", NS]).await;
    steps.push((
        "scale",
        json!({ "out": outcome(&out), "replicas": d["spec"]["replicas"], "managers": managers(&d) }),
    ));
    let out = k
        .run(
            &[
                "rollout",
                "status",
                "deployment/web",
                "-n",
                NS,
                "--timeout=90s",
            ],
            None,
        )
        .await;
    steps.push(("rollout status after scale", json!({ "code": out.code })));

    // Server-side apply: migrates the client-side apply's ownership, then conflicts with kubectl-edit.
    let ssa = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  namespace: kc-demo\ndata:\n  a: \"9\"\n";
    let out = k
        .run(&["apply", "--server-side", "-f", "-"], Some(ssa))
        .await;
    steps.push((
        "server-side apply conflict",
        json!({ "code": out.code, "conflict": out.stderr.contains("conflict") }),
    ));
    let out = k
        .run(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(ssa),
        )
        .await;
    let cm = k.get(&["configmap", "web-config", "-n", NS]).await;
    steps.push((
        "server-side apply forced",
        json!({ "out": outcome(&out), "data": cm["data"], "managers": managers(&cm) }),
    ));

    // Reading: server-side tables, YAML.
    let out = k
        .run(&["get", "configmap", "web-config", "-n", NS], None)
        .await;
    steps.push((
        "get table",
        json!({ "code": out.code, "table": table_without_age(&out.stdout) }),
    ));
    let out = k.run(&["get", "deployment", "web", "-n", NS], None).await;
    steps.push((
        "get deployment table",
        json!({ "code": out.code, "table": table_without_age(&out.stdout) }),
    ));
    let out = k.run(&["get", "namespace", NS], None).await;
    steps.push((
        "get namespace table",
        json!({ "code": out.code, "table": table_without_age(&out.stdout) }),
    ));
    let out = k
        .run(
            &["get", "configmap", "web-config", "-n", NS, "-o", "yaml"],
            None,
        )
        .await;
    let yaml: Value = serde_saphyr::from_str(&out.stdout).unwrap();
    steps.push((
        "get -o yaml",
        json!({ "code": out.code, "kind": yaml["kind"], "data": yaml["data"], "managedFields": yaml["metadata"]["managedFields"] }),
    ));

    // Watch: a labelled ConfigMap created while `kubectl get -w` runs.
    let mut watcher = k
        .command(&[
            "get",
            "configmaps",
            "-n",
            NS,
            "-l",
            "watched=yes",
            "-w",
            "-o",
            "name",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let watched = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched-1\n  namespace: kc-demo\n  labels:\n    watched: \"yes\"\n";
    let created = k.run(&["apply", "-f", "-"], Some(watched)).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    watcher.start_kill().unwrap();
    let seen = watcher.wait_with_output().await.unwrap();
    steps.push((
        "get --watch",
        json!({ "lines": String::from_utf8_lossy(&seen.stdout).lines().collect::<Vec<_>>() }),
    ));

    // Discovery.
    let out = k.run(&["api-resources"], None).await;
    let rows: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            [
                "configmaps",
                "namespaces",
                "deployments",
                "services",
                "pods",
                "customresourcedefinitions",
            ]
            .contains(&name)
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    steps.push(("api-resources", json!({ "code": out.code, "rows": rows })));
    let out = k
        .run(
            &[
                "api-resources",
                "--api-group=apps",
                "--namespaced=true",
                "-o",
                "name",
            ],
            None,
        )
        .await;
    let mut names: Vec<&str> = out.stdout.lines().collect();
    names.retain(|n| {
        [
            "deployments.apps",
            "replicasets.apps",
            "statefulsets.apps",
            "daemonsets.apps",
        ]
        .contains(n)
    });
    steps.push((
        "api-resources apps",
        json!({ "code": out.code, "names": names }),
    ));

    // Deleting.
    let out = k
        .run(&["delete", "configmap", "web-config", "-n", NS], None)
        .await;
    steps.push(("delete", outcome(&out)));
    let out = k
        .run(&["get", "configmap", "web-config", "-n", NS], None)
        .await;
    steps.push((
        "get deleted",
        json!({ "code": out.code, "stderr": out.stderr.trim() }),
    ));
    let out = k
        .run(&["delete", "namespace", NS, "--timeout=90s"], None)
        .await;
    steps.push(("delete namespace", outcome(&out)));
    steps
}

/// The kubectl binary, or `None` (with a message) where it cannot be built.
fn kubectl() -> Option<PathBuf> {
    if std::env::var_os("EDGECD_KUBECTL_BIN").is_none()
        && std::env::var_os("EDGECD_REALKUBE_BIN").is_none()
        && !realkube::go_available()
    {
        eprintln!("SKIPPED: Go is not installed, so kubectl (and realkube) cannot be built");
        return None;
    }
    Some(realkube::kubectl_binary().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_session_gives_the_same_results_on_the_emulator_and_a_real_server() {
    let Some(bin) = kubectl() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    let emu = KubeEmulator::start(EmulatorConfig {
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let emu_dir = dir.path().join("emulator");
    let kubeconfig = emu.write_kubeconfigs(&emu_dir).unwrap().remove(0);
    let started = std::time::Instant::now();
    let on_emulator = session(&Kubectl::new(&bin, &kubeconfig, &emu_dir)).await;
    eprintln!("emulator session: {:?}", started.elapsed());

    let real = tokio::task::spawn_blocking(RealCluster::start)
        .await
        .unwrap()
        .unwrap();
    let real_dir = dir.path().join("real");
    std::fs::create_dir_all(&real_dir).unwrap();
    let started = std::time::Instant::now();
    let on_real = session(&Kubectl::new(&bin, real.kubeconfig_path(), &real_dir)).await;
    eprintln!("real server session: {:?}", started.elapsed());

    let mut differences = Vec::new();
    for ((step, emulated), (_, real)) in on_emulator.iter().zip(&on_real) {
        if emulated != real {
            differences.push(format!(
                "{step}:\n  emulator: {emulated}\n  real:     {real}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "kubectl saw {} difference(s):\n{}",
        differences.len(),
        differences.join("\n")
    );
}
