//! A container of an installed workload started as a local process, exactly as its pod spec says: the chart tests run the real binaries this way, so a chart value the binary does not understand fails them.
//!
//! What a node would provide is played on the host: env values from the referenced Secrets and ConfigMaps
//! (read back from the API server), downward-API fields from [`Pod`], each volume a directory (Secrets and
//! ConfigMaps written into it, emptyDirs and claims empty) with paths under a mount path moved there, and each
//! listen address on a container port moved to the pod's IP and a free port. Only what the caller names in
//! `extra_env` is added (for example the credentials a ServiceAccount token would give in a cluster).

// Test support: every failure here is the calling test's failure, so it panics (with the object and the cause).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, PodSpec, Probe, Secret};
use kube::api::Api;

/// One pod of a workload as a test plays it: what the downward API gives its containers.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub ip: IpAddr,
}

/// What to start: container `container` of `spec`, in `namespace`, as `binary` (the image's entrypoint).
#[allow(missing_debug_implementations)]
pub struct Start<'a> {
    pub client: &'a kube::Client,
    pub namespace: &'a str,
    pub spec: &'a PodSpec,
    pub container: &'a str,
    pub pod: &'a Pod,
    /// Where the volumes and logs go.
    pub dir: &'a Path,
    pub binary: &'a Path,
    /// Added after the container's env (what the test substitutes for the cluster, named by the caller).
    pub extra_env: Vec<(String, String)>,
}

/// The started container; killed on drop, its output kept in files.
#[derive(Debug)]
pub struct ContainerProcess {
    pub child: Child,
    /// Standard output and standard error.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Where each named container port ended up (the pod's IP, a free port).
    pub ports: BTreeMap<String, SocketAddr>,
    /// Host directory of each mount path.
    pub mounts: BTreeMap<String, PathBuf>,
    readiness: Option<(String, String)>,
    liveness: Option<(String, String)>,
    name: String,
}

impl ContainerProcess {
    /// The last lines of both outputs.
    pub fn log_tail(&self) -> String {
        let tail = |path: &Path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "stdout:\n{}\nstderr:\n{}",
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }

    /// Where the container port named `name` listens.
    pub fn port(&self, name: &str) -> SocketAddr {
        *self.ports.get(name).unwrap_or_else(|| {
            panic!(
                "no env var makes {} listen on the port named {name}",
                self.name
            )
        })
    }

    /// Waits until the readiness probe's path answers 200 within `timeout`, then checks the liveness probe's;
    /// panics with the process's output if it exits first or never gets ready.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let (port, path) = self
            .readiness
            .clone()
            .unwrap_or_else(|| panic!("{} has no HTTP readiness probe", self.name));
        let addr = self.port(&port);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let probe = path.clone();
            let ready = tokio::task::spawn_blocking(move || http_status(addr, &probe))
                .await
                .unwrap_or(None);
            if ready == Some(200) {
                eprintln!(
                    "{}: {path} answered 200 after {:?}",
                    self.name,
                    start.elapsed()
                );
                break;
            }
            assert!(
                start.elapsed() < timeout,
                "{}: {path} did not answer 200 within {timeout:?} (last: {ready:?}):\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Some((port, path)) = self.liveness.clone() {
            let addr = self.port(&port);
            let live = tokio::task::spawn_blocking(move || http_status(addr, &path))
                .await
                .unwrap_or(None);
            assert_eq!(live, Some(200), "{}: liveness probe", self.name);
        }
    }
}

impl Drop for ContainerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The container named `name` of `spec`.
pub fn container<'a>(spec: &'a PodSpec, name: &str) -> &'a Container {
    spec.containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("the pod has no container {name}"))
}

/// Kubernetes' `$(VAR)` expansion in env values and args: a variable defined before is substituted, `$$`
/// is a `$`, anything else stays as written.
pub fn expand(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|inner| inner.split_once(')'))
        {
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The status code of `GET path` on `addr`, or `None` if it does not answer.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> BTreeMap<String, Vec<u8>> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Secret {namespace}/{name}: {e}"));
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

async fn config_map_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> BTreeMap<String, Vec<u8>> {
    let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("ConfigMap {namespace}/{name}: {e}"));
    map.data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect()
}

/// Writes the files a Secret or ConfigMap volume shows: its `items`, or every key.
fn write_projection(dir: &Path, data: BTreeMap<String, Vec<u8>>, items: Option<&Vec<KeyToPath>>) {
    match items {
        Some(items) => {
            for item in items {
                let bytes = data
                    .get(&item.key)
                    .unwrap_or_else(|| panic!("no key {} to project", item.key));
                let path = dir.join(&item.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).unwrap();
                }
                std::fs::write(path, bytes).unwrap();
            }
        }
        None => {
            for (key, bytes) in data {
                std::fs::write(dir.join(key), bytes).unwrap();
            }
        }
    }
}

fn http_probe(probe: Option<&Probe>) -> Option<(String, String)> {
    let get = probe?.http_get.as_ref()?;
    let port = match &get.port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => name.clone(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
    };
    Some((port, get.path.clone().unwrap_or_else(|| "/".into())))
}

/// Starts the container as its pod would run it (see the module's documentation).
pub async fn start(start: Start<'_>) -> ContainerProcess {
    let Start {
        client,
        namespace,
        spec,
        container: name,
        pod,
        dir,
        binary,
        extra_env,
    } = start;
    let container = container(spec, name);
    let volumes: BTreeMap<&str, _> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut mounts = BTreeMap::new();
    for mount in container.volume_mounts.iter().flatten() {
        assert!(mount.sub_path.is_none() && mount.sub_path_expr.is_none());
        let host = dir.join("volumes").join(&mount.name);
        std::fs::create_dir_all(&host).unwrap();
        let volume = volumes[mount.name.as_str()];
        if let Some(source) = &volume.secret {
            let secret = source.secret_name.as_deref().unwrap();
            let data = secret_data(client, namespace, secret).await;
            write_projection(&host, data, source.items.as_ref());
        } else if let Some(source) = &volume.config_map {
            let data = config_map_data(client, namespace, &source.name).await;
            write_projection(&host, data, source.items.as_ref());
        } else {
            assert!(
                volume.empty_dir.is_some() || volume.persistent_volume_claim.is_some(),
                "volume {} is of a kind this test cannot play",
                volume.name
            );
        }
        mounts.insert(mount.mount_path.clone(), host);
    }
    let on_host = |value: String| -> String {
        // The longest mount path that holds the value.
        mounts
            .iter()
            .filter(|(path, _)| value == **path || value.starts_with(&format!("{path}/")))
            .max_by_key(|(path, _)| path.len())
            .map_or(value.clone(), |(path, host)| {
                format!("{}{}", host.display(), &value[path.len()..])
            })
    };

    let container_ports: BTreeMap<u16, String> = container
        .ports
        .iter()
        .flatten()
        .map(|p| {
            (
                u16::try_from(p.container_port).unwrap(),
                p.name
                    .clone()
                    .unwrap_or_else(|| p.container_port.to_string()),
            )
        })
        .collect();
    let mut ports = BTreeMap::new();
    let mut env = BTreeMap::new();
    let mut ordered = Vec::new();
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            expand(value, &env)
        } else {
            let from = var.value_from.as_ref().unwrap();
            if let Some(field) = &from.field_ref {
                match field.field_path.as_str() {
                    "metadata.name" => pod.name.clone(),
                    "metadata.namespace" => namespace.to_owned(),
                    "status.podIP" => pod.ip.to_string(),
                    other => panic!("{}: downward-API field {other} not played", var.name),
                }
            } else if let Some(key) = &from.secret_key_ref {
                let mut data = secret_data(client, namespace, &key.name).await;
                let bytes = data
                    .remove(&key.key)
                    .unwrap_or_else(|| panic!("Secret {} has no key {}", key.name, key.key));
                String::from_utf8(bytes).unwrap()
            } else if let Some(key) = &from.config_map_key_ref {
                let mut data = config_map_data(client, namespace, &key.name).await;
                let bytes = data
                    .remove(&key.key)
                    .unwrap_or_else(|| panic!("ConfigMap {} has no key {}", key.name, key.key));
                String::from_utf8(bytes).unwrap()
            } else {
                panic!("{}: a value source this test cannot play", var.name)
            }
        };
        let mut value = on_host(value);
        // A listen address on one of the container's ports: all interfaces in the pod, here the pod's IP on a
        // free port.
        if let Ok(addr) = value.parse::<SocketAddr>()
            && let Some(port_name) = container_ports.get(&addr.port())
        {
            assert!(
                addr.ip().is_unspecified(),
                "{} listens on {addr}, not on every interface of the pod",
                var.name
            );
            let moved = SocketAddr::new(pod.ip, edgecd_testkit::net::free_port().unwrap());
            ports.insert(port_name.clone(), moved);
            value = moved.to_string();
        }
        env.insert(var.name.clone(), value.clone());
        ordered.push((var.name.clone(), value));
    }
    let args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|a| on_host(expand(a, &env)))
        .collect();
    assert!(
        container.command.is_none(),
        "{name}: the chart sets no command, the image's entrypoint runs"
    );
    let stdout = dir.join(format!("{name}.stdout"));
    let stderr = dir.join(format!("{name}.stderr"));
    eprintln!(
        "starting {} {} as container {name} of pod {} ({}) with {:?} and {:?}",
        binary.display(),
        args.join(" "),
        pod.name,
        pod.ip,
        ordered.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        extra_env
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
    );
    let child = Command::new(binary)
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(ordered)
        .envs(extra_env)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    ContainerProcess {
        child,
        stdout,
        stderr,
        ports,
        mounts,
        readiness: http_probe(container.readiness_probe.as_ref()),
        liveness: http_probe(container.liveness_probe.as_ref()),
        name: name.to_owned(),
    }
}
