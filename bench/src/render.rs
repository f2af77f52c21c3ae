//! `edgecd-bench render`: native kustomize rendering versus the external `kubectl kustomize` process, native
//! Jsonnet evaluation versus the `jsonnet`/`jrsonnet` program, and Helm charts through `edgecd-helm` versus `helm template`.
//!
//! Inputs (by default all of them): the talk-demo overlays, the largest real-world corpus cases
//! (kube-prometheus, Argo CD's cluster install, Kubeflow Pipelines' multi-user overlay; unpacked from
//! `testdata/kustomize-realworld/cases.tar.xz` with the system `tar`) and a generated kustomization of 4,000
//! objects (`edgecd_render::synthetic`). Every input is rendered natively and by the external tool in the same
//! run; the external tool's start-up is measured on a one-object kustomization, so the ratio is reported with
//! and without it. Native output is checked byte for byte against the external tool's.
//! A generated Jsonnet program (a library, an extVar, a comprehension of Deployments, Services and ConfigMaps)
//! is evaluated natively and, when `jsonnet` or `jrsonnet` is installed, by that program, the objects compared
//! as JSON; without one the comparison is skipped and the output says so.
//! A Helm chart (`testdata/helm/bench`: a Deployment, a Service and a ConfigMap per entry of a generated values
//! list) is rendered through edgecd's path (`edgecd_helm::HelmRenderer::render_dir`: a cold render runs `helm
//! template` as the spoke does, a cached one is answered from the render cache) beside the same `helm template`
//! command run directly, alternately in the same run, the objects compared as JSON; without a helm binary
//! (`EDGECD_HELM_BIN` or `helm` on `PATH`) the row is skipped and the output says why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Real-world corpus cases measured by default: (case folder, label).
const CORPUS_CASES: &[(&str, &str)] = &[
    ("071-kube-prometheus", "kube-prometheus"),
    (
        "009-argo-cd-manifests-cluster-install",
        "argo-cd cluster-install",
    ),
    (
        "094-kubeflow-applications-pipeline-upstream-env-plain-multi-user",
        "kubeflow pipelines multi-user",
    ),
];

/// Options of the render benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderBench {
    /// Directories to render instead of the default inputs.
    #[arg(long = "dir")]
    pub dirs: Vec<PathBuf>,
    /// Most native renders per input.
    #[arg(long, default_value_t = 300)]
    pub iterations: usize,
    /// Most external-process runs per input.
    #[arg(long, default_value_t = 10)]
    pub external_iterations: usize,
    /// Time budget of the native renders of one input, in seconds (at least 5 renders are made).
    #[arg(long, default_value_t = 10.0)]
    pub native_seconds: f64,
    /// Time budget of the external runs of one input, in seconds (at least 3 runs are made).
    #[arg(long, default_value_t = 60.0)]
    pub external_seconds: f64,
    /// Apps of the generated kustomization (4 objects each; 0 leaves it out).
    #[arg(long, default_value_t = edgecd_render::synthetic::APPS_FOR_4000_OBJECTS)]
    pub synthetic_apps: usize,
    /// Leave out the real-world corpus cases.
    #[arg(long)]
    pub no_corpus: bool,
    /// Leave out the talk-demo overlays.
    #[arg(long)]
    pub no_talk: bool,
    /// Apps of the generated Jsonnet program (3 objects each; 0 leaves it out).
    #[arg(long, default_value_t = 1000)]
    pub jsonnet_apps: usize,
    /// Entries of the Helm chart's generated values list (3 objects each; 0 leaves the Helm row out).
    #[arg(long, default_value_t = 1000)]
    pub helm_apps: usize,
}

/// Figures for one input.
#[derive(Debug, serde::Serialize)]
struct Row {
    input: String,
    objects: usize,
    output_bytes: usize,
    native_runs: usize,
    native_median_us: f64,
    native_renders_per_sec: f64,
    external_runs: usize,
    external_median_us: Option<f64>,
    external_renders_per_sec: Option<f64>,
    /// External median / native median.
    ratio: Option<f64>,
    /// (External median − external start-up) / native median.
    ratio_without_startup: Option<f64>,
    /// Native output equals the external tool's stdout byte for byte.
    identical: Option<bool>,
}

/// One input to measure.
struct Input {
    label: String,
    dir: PathBuf,
}

impl RenderBench {
    /// Runs the benchmark, printing a table and, as the last line, a JSON summary.
    pub fn run(self) -> anyhow::Result<()> {
        let scratch = tempfile::tempdir().context("creating a scratch directory")?;
        let inputs = self.inputs(scratch.path())?;
        let external = find_external();
        let startup = match &external {
            Some(tool) if !inputs.is_empty() => Some(self.measure_startup(tool, scratch.path())?),
            _ => None,
        };
        let startup_us = startup.map(micros);
        let mut rows = Vec::new();
        for input in &inputs {
            eprintln!("measuring {} …", input.label);
            rows.push(self.measure(input, external.as_deref(), startup_us)?);
        }
        let jsonnet_tool = find_jsonnet();
        if self.jsonnet_apps > 0 && self.dirs.is_empty() {
            eprintln!("measuring the generated Jsonnet program …");
            rows.push(self.measure_jsonnet(scratch.path(), jsonnet_tool.as_deref())?);
        }
        let helm = if self.helm_apps > 0 && self.dirs.is_empty() {
            match find_helm() {
                Some(helm) => {
                    eprintln!("measuring the Helm chart …");
                    Ok(self.measure_helm(scratch.path(), &helm)?)
                }
                None => Err(
                    "helm row skipped: no helm binary (EDGECD_HELM_BIN unset or not a file, no `helm` on PATH)",
                ),
            }
        } else {
            Err("helm row left out (--helm-apps 0 or --dir)")
        };
        let tool = external
            .as_ref()
            .map_or("none".to_string(), |t| t.join(" "));
        println!(
            "external tool: {tool}; start-up (one-object kustomization, median): {}",
            startup_us.map_or("-".into(), |s| format!("{:.1} ms", s / 1000.0))
        );
        println!(
            "{:<32} {:>7} {:>12} {:>10} {:>14} {:>10} {:>9} {:>13} {:>9}",
            "input",
            "objects",
            "native ms",
            "native/s",
            "external ms",
            "ext/s",
            "ratio",
            "ratio-startup",
            "identical"
        );
        for row in &rows {
            println!(
                "{:<32} {:>7} {:>12.2} {:>10.1} {:>14} {:>10} {:>9} {:>13} {:>9}",
                row.input,
                row.objects,
                row.native_median_us / 1000.0,
                row.native_renders_per_sec,
                row.external_median_us
                    .map_or("-".into(), |v| format!("{:.1}", v / 1000.0)),
                row.external_renders_per_sec
                    .map_or("-".into(), |v| format!("{v:.2}")),
                row.ratio.map_or("-".into(), |v| format!("{v:.0}x")),
                row.ratio_without_startup
                    .map_or("-".into(), |v| format!("{v:.0}x")),
                row.identical
                    .map_or("-".into(), |v| if v { "yes" } else { "NO" }.to_string()),
            );
        }
        if self.jsonnet_apps > 0 && self.dirs.is_empty() {
            match &jsonnet_tool {
                Some(tool) => println!(
                    "jsonnet row: external tool {tool}; ratio includes its start-up; identical = same objects as JSON"
                ),
                None => println!(
                    "jsonnet row: no `jsonnet` or `jrsonnet` program found, comparison skipped (native figures only)"
                ),
            }
        }
        match &helm {
            Ok(row) => row.print(),
            Err(reason) => println!("{reason}"),
        }
        let summary = serde_json::json!({
            "bench": "render",
            "external_tool": tool,
            "jsonnet_tool": jsonnet_tool,
            "external_startup_us": startup_us,
            "inputs": rows.len(),
            "rows": rows,
            "helm": helm.as_ref().ok(),
            "helm_skipped": helm.as_ref().err(),
        });
        println!("{summary}");
        if rows.iter().any(|r| r.identical == Some(false)) {
            bail!("native output differs from the external tool's for some input");
        }
        if helm.as_ref().is_ok_and(|row| !row.identical) {
            bail!("edgecd's Helm render differs from `helm template`'s objects");
        }
        Ok(())
    }

    fn inputs(&self, scratch: &Path) -> anyhow::Result<Vec<Input>> {
        if !self.dirs.is_empty() {
            return Ok(self
                .dirs
                .iter()
                .map(|dir| Input {
                    label: shorten(&dir.display().to_string()),
                    dir: dir.clone(),
                })
                .collect());
        }
        let mut inputs = Vec::new();
        if !self.no_talk {
            for dir in talk_overlays()? {
                inputs.push(Input {
                    label: format!("talk {}", shorten(&dir.display().to_string())),
                    dir,
                });
            }
        }
        if !self.no_corpus {
            let corpus = scratch.join("corpus");
            std::fs::create_dir_all(&corpus)?;
            let archive = edgecd_testkit::testdata().join("kustomize-realworld/cases.tar.xz");
            let mut tar = Command::new("tar");
            tar.arg("-xJf").arg(&archive).arg("-C").arg(&corpus);
            for (case, _) in CORPUS_CASES {
                tar.arg(format!("./{case}"));
            }
            let status = tar
                .status()
                .with_context(|| format!("running tar on {}", archive.display()))?;
            if !status.success() {
                bail!("tar could not unpack {}", archive.display());
            }
            for (case, label) in CORPUS_CASES {
                let case_dir = corpus.join(case);
                let build_dir = std::fs::read_to_string(case_dir.join("build-dir"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "input".into());
                inputs.push(Input {
                    label: (*label).to_string(),
                    dir: case_dir.join(build_dir),
                });
            }
        }
        if self.synthetic_apps > 0 {
            let dir = edgecd_render::synthetic::write_kustomization(
                &scratch.join("synthetic"),
                self.synthetic_apps,
            )?;
            inputs.push(Input {
                label: format!("generated {} objects", self.synthetic_apps * 4 + 1),
                dir,
            });
        }
        Ok(inputs)
    }

    /// Median time of the external tool on a one-object kustomization: its process start-up.
    fn measure_startup(&self, tool: &[String], scratch: &Path) -> anyhow::Result<Duration> {
        let dir = scratch.join("startup");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("kustomization.yaml"), "resources:\n- cm.yaml\n")?;
        std::fs::write(
            dir.join("cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: startup\n",
        )?;
        let runs = self.external_iterations.max(5);
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            samples.push(run_external(tool, &dir)?.0);
        }
        Ok(median(&samples))
    }

    fn measure(
        &self,
        input: &Input,
        external: Option<&[String]>,
        startup_us: Option<f64>,
    ) -> anyhow::Result<Row> {
        let options = edgecd_render::RenderOptions::default();
        let budget = Duration::from_secs_f64(self.native_seconds);
        let started = Instant::now();
        let mut native = Vec::new();
        let mut text = String::new();
        let mut objects = 0;
        while native.len() < self.iterations.max(1)
            && (native.len() < 5 || started.elapsed() < budget)
        {
            let start = Instant::now();
            let rendered = edgecd_render::render(&input.dir, &options)
                .with_context(|| format!("rendering {}", input.dir.display()))?;
            text = edgecd_render::to_yaml(&rendered);
            native.push(start.elapsed());
            objects = rendered.len();
            std::hint::black_box(&text);
        }
        let native_median_us = micros(median(&native));
        let native_total: Duration = native.iter().sum();
        let mut row = Row {
            input: input.label.clone(),
            objects,
            output_bytes: text.len(),
            native_runs: native.len(),
            native_median_us,
            native_renders_per_sec: native.len() as f64 / native_total.as_secs_f64(),
            external_runs: 0,
            external_median_us: None,
            external_renders_per_sec: None,
            ratio: None,
            ratio_without_startup: None,
            identical: None,
        };
        let Some(tool) = external else {
            return Ok(row);
        };
        let budget = Duration::from_secs_f64(self.external_seconds);
        let started = Instant::now();
        let mut samples = Vec::new();
        let mut identical = true;
        while samples.len() < self.external_iterations.max(1)
            && (samples.len() < 3 || started.elapsed() < budget)
        {
            let (elapsed, stdout) = run_external(tool, &input.dir)?;
            identical &= stdout == text.as_bytes();
            samples.push(elapsed);
        }
        let external_median_us = micros(median(&samples));
        let external_total: Duration = samples.iter().sum();
        row.external_runs = samples.len();
        row.external_median_us = Some(external_median_us);
        row.external_renders_per_sec = Some(samples.len() as f64 / external_total.as_secs_f64());
        row.ratio = Some(external_median_us / native_median_us);
        row.ratio_without_startup =
            startup_us.map(|s| (external_median_us - s).max(0.0) / native_median_us);
        row.identical = Some(identical);
        Ok(row)
    }
}

impl RenderBench {
    /// The generated Jsonnet program, natively and by the external program when there is one.
    fn measure_jsonnet(&self, scratch: &Path, tool: Option<&str>) -> anyhow::Result<Row> {
        let root = scratch.join("jsonnet");
        let app = root.join("app");
        std::fs::create_dir_all(&app)?;
        std::fs::create_dir_all(root.join("lib"))?;
        std::fs::write(root.join("lib/k.libsonnet"), JSONNET_LIB)?;
        std::fs::write(
            app.join("main.jsonnet"),
            JSONNET_MAIN.replace("APPS", &self.jsonnet_apps.to_string()),
        )?;
        let mut options = edgecd_render::RenderOptions {
            repo_root: Some(root.clone()),
            ..edgecd_render::RenderOptions::default()
        };
        options.jsonnet.libs = vec!["lib".into()];
        options.jsonnet.ext_vars = vec![edgecd_render::JsonnetVar {
            name: "env".into(),
            value: "bench".into(),
            code: false,
        }];
        let budget = Duration::from_secs_f64(self.native_seconds);
        let started = Instant::now();
        let mut native = Vec::new();
        let mut rendered = Vec::new();
        while native.len() < self.iterations.max(1)
            && (native.len() < 5 || started.elapsed() < budget)
        {
            let start = Instant::now();
            rendered =
                edgecd_render::render(&app, &options).context("rendering the Jsonnet program")?;
            native.push(start.elapsed());
            std::hint::black_box(&rendered);
        }
        let native_median_us = micros(median(&native));
        let native_total: Duration = native.iter().sum();
        let mut row = Row {
            input: format!("jsonnet {} objects", rendered.len()),
            objects: rendered.len(),
            output_bytes: serde_json::to_string(&rendered)?.len(),
            native_runs: native.len(),
            native_median_us,
            native_renders_per_sec: native.len() as f64 / native_total.as_secs_f64(),
            external_runs: 0,
            external_median_us: None,
            external_renders_per_sec: None,
            ratio: None,
            ratio_without_startup: None,
            identical: None,
        };
        let Some(tool) = tool else {
            return Ok(row);
        };
        let budget = Duration::from_secs_f64(self.external_seconds);
        let started = Instant::now();
        let mut samples = Vec::new();
        let mut identical = true;
        while samples.len() < self.external_iterations.max(1)
            && (samples.len() < 3 || started.elapsed() < budget)
        {
            let start = Instant::now();
            let output = Command::new(tool)
                .args(["--ext-str", "env=bench", "-J"])
                .arg(root.join("lib"))
                .arg(app.join("main.jsonnet"))
                .output()
                .with_context(|| format!("running {tool}"))?;
            samples.push(start.elapsed());
            if !output.status.success() {
                bail!("{tool} failed: {}", String::from_utf8_lossy(&output.stderr));
            }
            let theirs: serde_json::Value = serde_json::from_slice(&output.stdout)
                .with_context(|| format!("{tool}'s output is not JSON"))?;
            let theirs: Vec<serde_json::Value> = match theirs {
                serde_json::Value::Array(items) => items,
                other => vec![other],
            };
            identical &= theirs == rendered;
        }
        let external_median_us = micros(median(&samples));
        let external_total: Duration = samples.iter().sum();
        row.external_runs = samples.len();
        row.external_median_us = Some(external_median_us);
        row.external_renders_per_sec = Some(samples.len() as f64 / external_total.as_secs_f64());
        row.ratio = Some(external_median_us / native_median_us);
        row.identical = Some(identical);
        Ok(row)
    }
}

/// The Helm row: edgecd's render path (cold and cached) beside the plain `helm template` command.
#[derive(Debug, serde::Serialize)]
struct HelmRow {
    input: String,
    /// The helm binary and what `helm version --short` says.
    helm: String,
    helm_version: String,
    objects: usize,
    /// Bytes of `helm template`'s stdout.
    output_bytes: usize,
    /// `HelmRenderer::render_dir` at a commit not rendered before: `helm template` run as the spoke runs it
    /// (bounded subprocess, empty environment), its output loaded into objects and cached.
    edgecd_cold_runs: usize,
    edgecd_cold_median_us: f64,
    /// `HelmRenderer::render_dir` at the commit just rendered: answered by the render cache.
    edgecd_cached_runs: usize,
    edgecd_cached_median_us: f64,
    /// The same `helm template` command line run directly (stdout read, not parsed).
    helm_runs: usize,
    helm_median_us: f64,
    /// `edgecd_helm::load_manifests` on that stdout: the part of a cold render that loads helm's output.
    load_median_us: f64,
    /// edgecd cold median / helm median.
    cold_ratio: f64,
    /// edgecd cached median / helm median.
    cached_ratio: f64,
    /// edgecd's objects equal `helm template`'s stdout loaded as YAML, in every run.
    identical: bool,
}

impl HelmRow {
    fn print(&self) {
        println!(
            "helm row: {} ({}); edgecd = edgecd_helm::HelmRenderer::render_dir, cold (a commit not rendered before: helm runs) and cached; helm = the same `helm template` command run directly, alternating with the cold renders; identical = same objects as JSON",
            self.helm, self.helm_version
        );
        println!(
            "{:<32} {:>7} {:>15} {:>17} {:>17} {:>14} {:>10} {:>12} {:>9}",
            "input",
            "objects",
            "edgecd cold ms",
            "edgecd cached ms",
            "helm template ms",
            "output load ms",
            "cold/helm",
            "cached/helm",
            "identical"
        );
        println!(
            "{:<32} {:>7} {:>15.1} {:>17.4} {:>17.1} {:>14.1} {:>10.3} {:>12.6} {:>9}",
            self.input,
            self.objects,
            self.edgecd_cold_median_us / 1000.0,
            self.edgecd_cached_median_us / 1000.0,
            self.helm_median_us / 1000.0,
            self.load_median_us / 1000.0,
            self.cold_ratio,
            self.cached_ratio,
            if self.identical { "yes" } else { "NO" },
        );
    }
}

/// The Kubernetes version the Helm row renders for (`--kube-version`).
const HELM_KUBE_VERSION: &str = "v1.35.4";

/// The API versions and kinds the Helm row renders with (`--api-versions`): what the spoke's discovery finds on
/// a Kubernetes v1.35.4 API server without CRDs (testkit's realkube), every version of every group.
const HELM_API_KINDS: &[(&str, &[&str])] = &[
    (
        "v1",
        &[
            "Binding",
            "ComponentStatus",
            "ConfigMap",
            "Endpoints",
            "Event",
            "LimitRange",
            "Namespace",
            "Node",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Pod",
            "PodTemplate",
            "ReplicationController",
            "ResourceQuota",
            "Secret",
            "Service",
            "ServiceAccount",
        ],
    ),
    (
        "admissionregistration.k8s.io/v1",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingWebhookConfiguration",
        ],
    ),
    ("apiextensions.k8s.io/v1", &["CustomResourceDefinition"]),
    ("apiregistration.k8s.io/v1", &["APIService"]),
    (
        "apps/v1",
        &[
            "ControllerRevision",
            "DaemonSet",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
        ],
    ),
    (
        "authentication.k8s.io/v1",
        &["SelfSubjectReview", "TokenReview"],
    ),
    (
        "authorization.k8s.io/v1",
        &[
            "LocalSubjectAccessReview",
            "SelfSubjectAccessReview",
            "SelfSubjectRulesReview",
            "SubjectAccessReview",
        ],
    ),
    ("autoscaling/v1", &["HorizontalPodAutoscaler"]),
    ("autoscaling/v2", &["HorizontalPodAutoscaler"]),
    ("batch/v1", &["CronJob", "Job"]),
    ("certificates.k8s.io/v1", &["CertificateSigningRequest"]),
    ("coordination.k8s.io/v1", &["Lease"]),
    ("discovery.k8s.io/v1", &["EndpointSlice"]),
    ("events.k8s.io/v1", &["Event"]),
    (
        "flowcontrol.apiserver.k8s.io/v1",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    (
        "networking.k8s.io/v1",
        &[
            "IPAddress",
            "Ingress",
            "IngressClass",
            "NetworkPolicy",
            "ServiceCIDR",
        ],
    ),
    ("node.k8s.io/v1", &["RuntimeClass"]),
    ("policy/v1", &["PodDisruptionBudget"]),
    (
        "rbac.authorization.k8s.io/v1",
        &["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"],
    ),
    (
        "resource.k8s.io/v1",
        &[
            "DeviceClass",
            "ResourceClaim",
            "ResourceClaimTemplate",
            "ResourceSlice",
        ],
    ),
    ("scheduling.k8s.io/v1", &["PriorityClass"]),
    (
        "storage.k8s.io/v1",
        &[
            "CSIDriver",
            "CSINode",
            "CSIStorageCapacity",
            "StorageClass",
            "VolumeAttachment",
            "VolumeAttributesClass",
        ],
    ),
];

/// `group/version` and `group/version/Kind` of [`HELM_API_KINDS`], as the spoke lists them.
fn helm_api_versions() -> Vec<String> {
    let mut versions = std::collections::BTreeSet::new();
    for (api_version, kinds) in HELM_API_KINDS {
        versions.insert((*api_version).to_string());
        for kind in *kinds {
            versions.insert(format!("{api_version}/{kind}"));
        }
    }
    versions.into_iter().collect()
}

/// The values file of the Helm row: `apps` entries of the chart `testdata/helm/bench`.
fn helm_values(apps: usize) -> String {
    let mut text = String::from("apps:\n");
    for i in 1..=apps {
        let tags: Vec<String> = (0..i % 5).map(|t| format!("t{t}")).collect();
        text.push_str(&format!(
            "- name: app-{i:04}\n  replicas: {}\n  port: {}\n  tags: [{}]\n",
            1 + i % 3,
            8080 + i % 2,
            tags.join(", ")
        ));
    }
    text
}

/// The helm binary: `EDGECD_HELM_BIN`, else `helm` on `PATH`.
fn find_helm() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("EDGECD_HELM_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return bin.is_file().then_some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("helm"))
        .find(|candidate| candidate.is_file())
}

/// Copies the directory `from` to `to` (files and folders only).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

impl RenderBench {
    /// The chart `testdata/helm/bench` with `--helm-apps` entries, through `HelmRenderer::render_dir` (cold
    /// renders alternating with the plain `helm template` command, then cached renders).
    fn measure_helm(&self, scratch: &Path, helm: &Path) -> anyhow::Result<HelmRow> {
        let root = scratch.join("helm-repo");
        let chart = root.join("charts/bench");
        copy_dir(&edgecd_testkit::testdata().join("helm/bench"), &chart)?;
        let values = chart.join("values-bench.yaml");
        std::fs::write(&values, helm_values(self.helm_apps))?;
        let capabilities = edgecd_helm::Capabilities {
            kube_version: HELM_KUBE_VERSION.into(),
            api_versions: helm_api_versions(),
        };
        let source = edgecd_core::app::ApplicationSource {
            repo_url: "https://git.example/bench.git".into(),
            path: "charts/bench".into(),
            helm: Some(edgecd_core::app::HelmSource {
                value_files: vec!["values-bench.yaml".into()],
                ..edgecd_core::app::HelmSource::default()
            }),
            ..edgecd_core::app::ApplicationSource::default()
        };
        let context = edgecd_helm::RenderContext {
            app_name: "bench",
            namespace: "bench",
            capabilities: &capabilities,
        };
        let mut config = edgecd_helm::HelmConfig::new(helm, scratch.join("helm-home"));
        // Every cold render is a new cache entry: keep a few, not 128 renders of thousands of objects.
        config.cache_entries = 4;
        let renderer = edgecd_helm::HelmRenderer::new(config);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a Tokio runtime")?;
        let render = |commit: &str| {
            runtime
                .block_on(renderer.render_dir(&source, &context, &root, &chart, commit))
                .context("rendering the chart through edgecd_helm")
        };
        // The plain command a person would type for the same release.
        let mut plain = Command::new(helm);
        plain
            .args(["template", "bench"])
            .arg(&chart)
            .args(["--namespace", "bench", "--include-crds", "--kube-version"])
            .arg(HELM_KUBE_VERSION);
        for version in &capabilities.api_versions {
            plain.args(["--api-versions", version]);
        }
        plain.arg("--values").arg(&values);
        let mut run_plain = || -> anyhow::Result<(Duration, Vec<u8>)> {
            let start = Instant::now();
            let output = plain.output().context("running helm template")?;
            let elapsed = start.elapsed();
            if !output.status.success() {
                bail!(
                    "helm template failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Ok((elapsed, output.stdout))
        };
        let version = Command::new(helm)
            .args(["version", "--short"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();

        // One of each first (helm's home created, files in the page cache), not counted.
        render("0000000000000000000000000000000000000000")?;
        run_plain()?;
        let budget = Duration::from_secs_f64(self.external_seconds);
        let started = Instant::now();
        let (mut cold, mut direct, mut load) = (Vec::new(), Vec::new(), Vec::new());
        let mut identical = true;
        let (mut objects, mut output_bytes) = (0, 0);
        let mut last_commit = String::new();
        while cold.len() < self.external_iterations.max(1)
            && (cold.len() < 3 || started.elapsed() < budget)
        {
            // A commit not rendered before: a cache miss, so helm runs.
            let commit = format!("{:040x}", cold.len() + 1);
            let edgecd_first = cold.len() % 2 == 0;
            let mut ours = None;
            if edgecd_first {
                let start = Instant::now();
                ours = Some(render(&commit)?);
                cold.push(start.elapsed());
            }
            let (elapsed, stdout) = run_plain()?;
            direct.push(elapsed);
            if !edgecd_first {
                let start = Instant::now();
                ours = Some(render(&commit)?);
                cold.push(start.elapsed());
            }
            let ours = ours.context("no edgecd render")?;
            let text = std::str::from_utf8(&stdout).context("helm's output is not UTF-8")?;
            let start = Instant::now();
            std::hint::black_box(
                edgecd_helm::load_manifests(text).context("loading helm's output")?,
            );
            load.push(start.elapsed());
            let theirs: Vec<serde_json::Value> = edgecd_render::yaml::load_documents(text)
                .context("loading helm's output")?
                .into_iter()
                .filter(|document| !document.is_null())
                .collect();
            identical &= *ours == theirs;
            objects = ours.len();
            output_bytes = stdout.len();
            last_commit = commit;
        }

        // The commit just rendered again: the render cache answers.
        let budget = Duration::from_secs_f64(self.native_seconds);
        let started = Instant::now();
        let cached = runtime.block_on(async {
            let mut cached = Vec::new();
            while cached.len() < self.iterations.max(1)
                && (cached.len() < 5 || started.elapsed() < budget)
            {
                let start = Instant::now();
                let objects = renderer
                    .render_dir(&source, &context, &root, &chart, &last_commit)
                    .await
                    .context("rendering the chart through edgecd_helm (cached)")?;
                cached.push(start.elapsed());
                std::hint::black_box(&objects);
            }
            anyhow::Ok(cached)
        })?;
        let (cold_us, cached_us, direct_us) = (
            micros(median(&cold)),
            micros(median(&cached)),
            micros(median(&direct)),
        );
        Ok(HelmRow {
            input: format!("helm chart {objects} objects"),
            helm: helm.display().to_string(),
            helm_version: version,
            objects,
            output_bytes,
            edgecd_cold_runs: cold.len(),
            edgecd_cold_median_us: cold_us,
            edgecd_cached_runs: cached.len(),
            edgecd_cached_median_us: cached_us,
            helm_runs: direct.len(),
            helm_median_us: direct_us,
            load_median_us: micros(median(&load)),
            cold_ratio: cold_us / direct_us,
            cached_ratio: cached_us / direct_us,
            identical,
        })
    }
}

/// The library of the generated Jsonnet program: object constructors in the style of k8s-libsonnet.
const JSONNET_LIB: &str = r#"{
  labels(name):: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'bench' },
  deployment(name, image, replicas):: {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: name, labels: $.labels(name) },
    spec: {
      replicas: replicas,
      selector: { matchLabels: $.labels(name) },
      template: {
        metadata: { labels: $.labels(name) },
        spec: { containers: [{ name: 'main', image: image, ports: [{ containerPort: 8080 }],
                               env: [{ name: 'ENV', value: std.extVar('env') }] }] },
      },
    },
  },
  service(name):: {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: name, labels: $.labels(name) },
    spec: { selector: $.labels(name), ports: [{ port: 80, targetPort: 8080 }] },
  },
  configMap(name, data):: {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name + '-config' }, data: data,
  },
}
"#;

/// The generated program: `APPS` apps of three objects each.
const JSONNET_MAIN: &str = r#"local k = import 'k.libsonnet';
local app(i) = local name = 'app-%04d' % i; [
  k.deployment(name, 'registry.example/app:%d.%d' % [i % 7, i % 13], 1 + i % 3),
  k.service(name),
  k.configMap(name, { index: std.toString(i), hash: std.md5(name), tags: std.join(',', [std.toString(j) for j in std.range(0, i % 5)]) }),
];
std.flattenArrays([app(i) for i in std.range(1, APPS)])
"#;

/// `jsonnet` (go-jsonnet or the C++ one) or `jrsonnet`, if installed.
fn find_jsonnet() -> Option<String> {
    ["jsonnet", "jrsonnet"].into_iter().find_map(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
            .then(|| tool.to_string())
    })
}

fn talk_overlays() -> anyhow::Result<Vec<PathBuf>> {
    let base = edgecd_testkit::testdata().join("talk-demo-repo/deploy/overlays");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .with_context(|| format!("listing {}", base.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!("no overlays under {}", base.display());
    }
    Ok(dirs)
}

/// `kustomize build` if installed, else `kubectl kustomize`.
fn find_external() -> Option<Vec<String>> {
    let works = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("kustomize", &["version"]) {
        return Some(vec!["kustomize".into(), "build".into()]);
    }
    if works("kubectl", &["version", "--client"]) {
        return Some(vec!["kubectl".into(), "kustomize".into()]);
    }
    None
}

/// One run of the external tool: its wall time and stdout.
fn run_external(tool: &[String], dir: &Path) -> anyhow::Result<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let output = Command::new(&tool[0])
        .args(&tool[1..])
        .arg(dir)
        .output()
        .context("running the external tool")?;
    let elapsed = start.elapsed();
    if !output.status.success() {
        bail!(
            "{} failed on {}: {}",
            tool.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((elapsed, output.stdout))
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn shorten(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}
