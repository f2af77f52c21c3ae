//! kustomize's `helmCharts` (Helm chart inflation generator) with the real helm binary: output equal to `kubectl kustomize --enable-helm` for the fixtures, and the error cases.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::{Path, PathBuf};
use std::process::Command;

use edgecd_render::{
    ChartInflation, ChartLocation, HelmChartInflator, RenderOptions, Value, render, render_with,
    to_yaml,
};

/// The helm binary of the tests (`EDGECD_HELM_BIN`), or `None` with a note (the test is then skipped).
fn helm_bin() -> Option<PathBuf> {
    match std::env::var_os("EDGECD_HELM_BIN") {
        Some(path) if Path::new(&path).is_file() => Some(PathBuf::from(path)),
        _ => {
            eprintln!("EDGECD_HELM_BIN is not set to a helm binary: skipped");
            None
        }
    }
}

/// Runs `helm template` for a chart directory as the spoke's edgecd-helm does (only local charts here: the
/// chart repository path is the e2e test's).
struct HelmCli {
    binary: PathBuf,
    home: tempfile::TempDir,
}

impl HelmChartInflator for HelmCli {
    fn inflate(&self, chart: &ChartInflation) -> Result<Vec<Value>, String> {
        let ChartLocation::Directory(dir) = &chart.chart else {
            return Err(format!("not a local chart: {:?}", chart.chart));
        };
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("HELM_CACHE_HOME", self.home.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.home.path().join("config"))
            .env("HELM_DATA_HOME", self.home.path().join("data"))
            .env("KUBECONFIG", self.home.path().join("none"))
            .arg("template")
            .arg(&chart.release_name)
            .arg(dir);
        if !chart.namespace.is_empty() {
            command.args(["--namespace", &chart.namespace]);
        }
        if let Some(values) = &chart.values {
            let file = self.home.path().join("values.json");
            std::fs::write(&file, values).unwrap();
            command.arg("-f").arg(file);
        }
        if chart.include_crds {
            command.arg("--include-crds");
        }
        if chart.skip_tests {
            command.arg("--skip-tests");
        }
        for version in &chart.api_versions {
            command.args(["--api-versions", version]);
        }
        if !chart.kube_version.is_empty() {
            command.args(["--kube-version", &chart.kube_version]);
        }
        let output = command.output().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        let text = String::from_utf8(output.stdout).map_err(|e| e.to_string())?;
        Ok(edgecd_render::yaml::load_documents(&text)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|v| !v.is_null())
            .collect())
    }
    fn repository_chart_values(&self, chart: &ChartLocation) -> Result<Option<String>, String> {
        Err(format!("not a local chart: {chart:?}"))
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/kustomize-helm")
        .join(name)
}

fn repo_options(root: &Path) -> RenderOptions {
    RenderOptions {
        repo_root: Some(root.to_path_buf()),
        ..RenderOptions::default()
    }
}

fn inflator(binary: PathBuf) -> HelmCli {
    HelmCli {
        binary,
        home: tempfile::tempdir().unwrap(),
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A copy of `testdata/helm/web` at `dir`.
fn copy_chart(to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/helm/web"),
        to,
    );
}

/// `kubectl kustomize --enable-helm` of `dir`, when `EDGECD_KUBECTL_BIN` is set. kubectl's kustomize (v5.7)
/// refuses helm v4 after asking `helm version -c --short`, so a wrapper answers that question with a v3-style
/// version and passes every other command to the real helm.
fn kubectl_kustomize(dir: &Path, helm: &Path) -> Option<String> {
    let Some(kubectl) = std::env::var_os("EDGECD_KUBECTL_BIN").filter(|k| Path::new(k).is_file())
    else {
        eprintln!(
            "EDGECD_KUBECTL_BIN is not set: the comparison with kubectl kustomize is skipped"
        );
        return None;
    };
    let wrapper_dir = tempfile::tempdir().unwrap();
    let wrapper = wrapper_dir.path().join("helm");
    write(
        &wrapper,
        &format!(
            "#!/bin/sh\nif [ \"$1\" = version ]; then echo v3.99.0; exit 0; fi\nexec '{}' \"$@\"\n",
            helm.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(kubectl)
        .args(["kustomize", "--enable-helm", "--helm-command"])
        .arg(&wrapper)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap())
}

#[test]
fn inflated_chart_gets_the_kustomization_and_matches_kubectl() {
    let Some(helm) = helm_bin() else { return };
    let dir = fixture("basic");
    let root = dir.join("../..");
    let objects = render_with(&dir, &repo_options(&root), Some(&inflator(helm.clone()))).unwrap();
    let text = to_yaml(&objects);
    // The chart's objects carry the kustomization's namespace, labels and patch; helm saw the merged values.
    assert!(text.contains("name: shop-config"), "{text}");
    assert!(text.contains("patched: \"yes\""), "{text}");
    assert!(text.contains("replicas: \"3\""), "{text}");
    assert!(text.contains("region: eu-west"), "{text}");
    assert_eq!(
        objects
            .iter()
            .filter(|o| o["metadata"]["namespace"] == "shop"
                && o["metadata"]["labels"]["team"] == "edge")
            .count(),
        3,
        "{text}"
    );
    if let Some(expected) = kubectl_kustomize(&dir, &helm) {
        assert_eq!(text, expected);
    }
}

/// Every field kustomize hands helm, and the values merge modes, against kubectl on generated kustomizations.
#[test]
fn fields_and_values_merge_match_kubectl() {
    let Some(helm) = helm_bin() else { return };
    let cases = [
        // Default release name, the chart's values.yaml merged with valuesInline (override).
        "helmCharts:\n- name: web\n  valuesInline:\n    region: x\n",
        // merge: the values file wins over valuesInline; replace: valuesInline alone.
        "helmCharts:\n- name: web\n  valuesFile: v.yaml\n  valuesMerge: merge\n  valuesInline:\n    region: inline\n    replicas: 7\n",
        "helmCharts:\n- name: web\n  releaseName: r\n  valuesFile: v.yaml\n  valuesMerge: replace\n  valuesInline:\n    region: only\n",
        // Capabilities given by the entry; a chart home; a versioned directory with repo and version.
        "helmGlobals:\n  chartHome: vendor\nhelmCharts:\n- name: web\n  namespace: n1\n  kubeVersion: v1.30.2\n  apiVersions: [example.edgecd.io/v1/Widget]\n  valuesInline: {region: west}\n",
        "helmCharts:\n- name: web\n  version: 0.1.0\n  repo: https://charts.invalid/\n  valuesInline: {region: z}\n",
        // Namespace, prefix and labels of the kustomization over the chart and a generator.
        "namespace: ns\nnamePrefix: p-\nlabels:\n- pairs: {a: b}\nconfigMapGenerator:\n- name: gen\n  literals: [k=v]\nhelmCharts:\n- name: web\n  valuesFile: v.yaml\n",
        // The chart's crds/ only with includeCRDs; origins recorded with buildMetadata.
        "helmCharts:\n- name: web\n  includeCRDs: true\n  skipTests: true\n  valuesInline: {region: c}\n",
        "buildMetadata: [originAnnotations]\nhelmCharts:\n- name: web\n  valuesInline: {region: o}\n",
    ];
    for (i, kustomization) in cases.iter().enumerate() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        copy_chart(&dir.join("charts/web"));
        copy_chart(&dir.join("vendor/web"));
        copy_chart(&dir.join("charts/web-0.1.0/web"));
        write(
            &dir.join("charts/web/crds/widgets.yaml"),
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.edgecd.io\nspec:\n  group: example.edgecd.io\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: []\n",
        );
        write(&dir.join("v.yaml"), "region: file\n");
        write(&dir.join("kustomization.yaml"), kustomization);
        let objects = render_with(dir, &repo_options(dir), Some(&inflator(helm.clone())))
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        let text = to_yaml(&objects);
        match kubectl_kustomize(dir, &helm) {
            Some(expected) => assert_eq!(text, expected, "case {i}:\n{kustomization}"),
            None => assert!(!objects.is_empty()),
        }
    }
}

#[test]
fn errors_name_the_kustomization_the_entry_and_the_cause() {
    let Some(helm) = helm_bin() else { return };
    let cases: [(&str, &[&str]); 7] = [
        (
            "helmCharts:\n- name: nope\n",
            &[
                "kustomization.yaml",
                "helmCharts[0] (nope)",
                "no chart found at 'app/charts/nope'",
            ],
        ),
        (
            "helmGlobals:\n  chartHome: ../../outside\nhelmCharts:\n- name: web\n",
            &[
                "kustomization.yaml",
                "helmCharts[0] (web)",
                "leaves the repository",
            ],
        ),
        (
            "helmGlobals:\n  chartHome: ../elsewhere\nhelmCharts:\n- name: web\n",
            &["helmCharts[0] (web)", "not in or below"],
        ),
        (
            "helmCharts:\n- name: web\n  valuesMerge: bogus\n",
            &[
                "kustomization.yaml",
                "helmCharts[0] (web)",
                "valuesMerge must be one of [merge override replace]",
            ],
        ),
        (
            "helmCharts:\n- name: web\n",
            &[
                "kustomization.yaml",
                "helmCharts[0] (web)",
                "web/templates/configmap.yaml",
                "region is required",
            ],
        ),
        (
            "helmCharts:\n- name: web\n  additionalValuesFiles: [../v.yaml]\n  valuesInline: {region: a}\n",
            &[
                "helmCharts[0] (web)",
                "additionalValuesFiles[0]",
                "not in or below",
            ],
        ),
        (
            "helmCharts:\n- name: web\n  repo: ftp://charts.invalid/\n  version: 1.0.0\n",
            &["helmCharts[0] (web)", "neither a chart repository"],
        ),
    ];
    for (kustomization, wanted) in cases {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        let dir = root.join("app");
        copy_chart(&dir.join("charts/web"));
        copy_chart(&root.join("elsewhere/web"));
        write(&root.join("v.yaml"), "region: a\n");
        write(&dir.join("kustomization.yaml"), kustomization);
        let err = render_with(&dir, &repo_options(root), Some(&inflator(helm.clone())))
            .unwrap_err()
            .to_string();
        for part in wanted {
            assert!(err.contains(part), "{kustomization}: {part:?} not in {err}");
        }
    }
}

/// Without an inflator (the hub's app-of-apps render) a `helmCharts` entry fails, saying why.
#[test]
fn without_an_inflator_helm_charts_fail_clearly() {
    let dir = fixture("basic");
    let root = dir.join("../..");
    let err = render(&dir, &repo_options(&root)).unwrap_err().to_string();
    assert!(
        err.contains("kustomization.yaml")
            && err.contains("helmCharts[0] (web)")
            && err.contains("needs the helm program"),
        "{err}"
    );
}

/// `skipHooks` drops what `helm template --no-hooks` leaves out; a render that inflated a chart is not cached.
#[test]
fn skip_hooks_and_no_caching_of_inflated_renders() {
    let Some(helm) = helm_bin() else { return };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    copy_chart(&dir.join("charts/web"));
    write(
        &dir.join("charts/web/templates/hook.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hook\n  annotations:\n    helm.sh/hook: pre-install\n",
    );
    write(
        &dir.join("kustomization.yaml"),
        "helmCharts:\n- name: web\n  skipHooks: true\n  valuesInline: {region: a}\n",
    );
    let helm = inflator(helm);
    let objects = render_with(dir, &repo_options(dir), Some(&helm)).unwrap();
    assert!(objects.iter().all(|o| o["metadata"]["name"] != "hook"));
    let mut cache = edgecd_render::RenderCache::new(4);
    cache
        .render_with("c1", dir, &repo_options(dir), Some(&helm))
        .unwrap();
    assert!(cache.is_empty());
    let shared = std::sync::Mutex::new(cache);
    edgecd_render::RenderCache::render_shared(&shared, "c1", dir, &repo_options(dir), Some(&helm))
        .unwrap();
    assert!(shared.lock().unwrap().is_empty());
    // A kustomization without helmCharts is cached as ever, inflator or not.
    let plain = tempfile::tempdir().unwrap();
    write(
        &plain.path().join("kustomization.yaml"),
        "configMapGenerator:\n- name: c\n  literals: [a=b]\n",
    );
    edgecd_render::RenderCache::render_shared(
        &shared,
        "c1",
        plain.path(),
        &repo_options(plain.path()),
        Some(&helm),
    )
    .unwrap();
    assert_eq!(shared.lock().unwrap().len(), 1);
    write(
        &dir.join("kustomization.yaml"),
        "helmCharts:\n- name: web\n  valuesInline: {region: a}\n",
    );
    let objects = render_with(dir, &repo_options(dir), Some(&helm)).unwrap();
    assert!(objects.iter().any(|o| o["metadata"]["name"] == "hook"));
}

/// A base's charts are inflated in the base (its own chart home) and the overlay transforms them as the
/// base's objects.
#[test]
fn an_overlay_over_a_base_with_helm_charts_matches_kubectl() {
    let Some(helm) = helm_bin() else { return };
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    copy_chart(&root.join("base/charts/web"));
    write(
        &root.join("base/kustomization.yaml"),
        "helmCharts:\n- name: web\n  releaseName: base\n  valuesInline: {region: b}\n",
    );
    write(
        &root.join("overlay/kustomization.yaml"),
        "resources: [../base]\nnamePrefix: o-\nnamespace: over\npatches:\n- target: {kind: ConfigMap, name: base-config}\n  patch: |\n    - op: replace\n      path: /data/region\n      value: patched\n",
    );
    let dir = root.join("overlay");
    let objects = render_with(&dir, &repo_options(root), Some(&inflator(helm.clone()))).unwrap();
    let text = to_yaml(&objects);
    assert!(
        text.contains("name: o-base-config") && text.contains("region: patched"),
        "{text}"
    );
    if let Some(expected) = kubectl_kustomize(&dir, &helm) {
        assert_eq!(text, expected);
    }
}

/// A checkout reached through a symlinked directory (the repository root is canonicalized, the rendered
/// directory is not): the chart home is still found inside the repository.
#[test]
fn a_repository_reached_through_a_symlink_inflates() {
    let Some(helm) = helm_bin() else { return };
    let temp = tempfile::tempdir().unwrap();
    let real = temp.path().join("real");
    copy_chart(&real.join("app/charts/web"));
    write(
        &real.join("app/kustomization.yaml"),
        "helmCharts:\n- name: web\n  valuesInline: {region: l}\n",
    );
    let link = temp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let objects = render_with(
        &link.join("app"),
        &repo_options(&link),
        Some(&inflator(helm)),
    )
    .unwrap();
    assert!(objects.iter().any(|o| o["data"]["region"] == "l"));
}
