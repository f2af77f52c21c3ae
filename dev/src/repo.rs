//! The dev fleet's git content: `edge-fleet-repo` embedded at build time, plus overlays for clusters beyond the fixture's three and the generated apps' kustomization.

use std::path::Path;

use include_dir::{Dir, include_dir};

/// The repository's `testdata/edge-fleet-repo`, compiled into the binary.
pub static EDGE_FLEET_REPO: Dir<'static> =
    include_dir!("$CARGO_MANIFEST_DIR/../testdata/edge-fleet-repo");

/// The placeholder `repoURL` of the fixture's ApplicationSets.
pub const PLACEHOLDER_REPO_URL: &str = "https://github.com/example/repo";

/// Every embedded file as (relative path, contents), sorted by path.
pub fn fixture_files() -> Vec<(String, &'static [u8])> {
    let mut files = Vec::new();
    collect(&EDGE_FLEET_REPO, &mut files);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

fn collect(dir: &'static Dir<'static>, out: &mut Vec<(String, &'static [u8])>) {
    for file in dir.files() {
        out.push((path_text(file.path()), file.contents()));
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// The files of the dev fleet's repository: the fixture with the ApplicationSets pointing at
/// `repo_url`, an overlay per cluster (`deploy/overlays/cluster-N` for N > 3 follow the pattern of
/// the first three), `deploy/generated` for the extra apps, and `appsets/edge-addons.yaml` (the
/// fleet-scoped set of `--edge-addons`).
pub fn repository_files(repo_url: &str, clusters: &[String]) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fixture_files()
        .into_iter()
        .map(|(path, bytes)| {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let text = if path.starts_with("appsets/") {
                text.replace(PLACEHOLDER_REPO_URL, repo_url)
            } else {
                text
            };
            (path, text)
        })
        .collect();
    for (i, cluster) in clusters.iter().enumerate() {
        let path = format!("deploy/overlays/{cluster}/kustomization.yaml");
        if !files.iter().any(|(p, _)| *p == path) {
            files.push((path, overlay(cluster, i + 1)));
        }
    }
    files.push((
        EDGE_ADDONS_APPSET.into(),
        EDGE_ADDONS.replace(PLACEHOLDER_REPO_URL, repo_url),
    ));
    files.push((
        "deploy/generated/kustomization.yaml".into(),
        GENERATED_KUSTOMIZATION.into(),
    ));
    files.push((
        "deploy/generated/config.yaml".into(),
        GENERATED_CONFIG.into(),
    ));
    files.push((
        "deploy/generated/deployment.yaml".into(),
        GENERATED_DEPLOYMENT.into(),
    ));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// An overlay like the fixture's: label, replicas, image tag and an external IP per cluster.
pub fn overlay(cluster: &str, index: usize) -> String {
    let octet = (index % 250) + 1;
    format!(
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../base
labels:
- pairs:
    edge.cluster: {cluster}
replicas:
- name: nginx
  count: 2
images:
- name: nginx
  newTag: 1.19.0
patches:
- target:
    kind: Service
    name: nginx
  patch: |-
    - op: add
      path: /spec/externalIPs
      value: ["10.0.{octet}.1"]
"#
    )
}

/// Path of the fleet-scoped set `edgecd-dev --edge-addons` applies, in the dev fleet's repository.
pub const EDGE_ADDONS_APPSET: &str = "appsets/edge-addons.yaml";

/// The talk's `cluster-addons` set made to run on its own: the three app folders of
/// `deploy/clusters/cluster-3` (`guestbook`, `minecraft`, `nginx`) generated at every cluster the
/// set reaches, with automated sync creating the destination namespace (minecraft's kustomization
/// puts it in `games`, which the fleet creates when it enrolls a cluster for `--edge-addons`).
const EDGE_ADDONS: &str = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: edge-addons
spec:
  generators:
  - git:
      repoURL: https://github.com/example/repo
      revision: HEAD
      directories:
      - path: deploy/clusters/cluster-3/*
  template:
    metadata:
      name: '{{path.basename}}'
    spec:
      project: default
      source:
        repoURL: https://github.com/example/repo
        targetRevision: HEAD
        path: '{{path}}'
      destination:
        server: https://kubernetes.default.svc
        namespace: addons
      syncPolicy:
        automated:
          prune: true
          selfHeal: true
        syncOptions:
        - CreateNamespace=true
";

const GENERATED_KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- config.yaml
- deployment.yaml
";

const GENERATED_CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello from the edge
";

const GENERATED_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
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
        image: nginx:1.19.0
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_fixture_equals_the_one_on_disk() {
        let dir = crate::testdata().join("edge-fleet-repo");
        let mut on_disk = Vec::new();
        read_tree(&dir, &dir, &mut on_disk);
        on_disk.sort_by(|a, b| a.0.cmp(&b.0));
        let embedded: Vec<(String, Vec<u8>)> = fixture_files()
            .into_iter()
            .map(|(p, b)| (p, b.to_vec()))
            .collect();
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(names(&embedded), names(&on_disk), "file lists differ");
        for ((path, a), (_, b)) in embedded.iter().zip(&on_disk) {
            assert!(
                a == b,
                "{path} differs from testdata/edge-fleet-repo/{path}"
            );
        }
    }

    fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                read_tree(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }

    #[test]
    fn appsets_point_at_the_dev_repo_and_every_cluster_has_an_overlay() {
        let clusters: Vec<String> = (1..=5).map(|i| format!("cluster-{i}")).collect();
        let files = repository_files("git://127.0.0.1:9/edge-fleet.git", &clusters);
        let appset = files
            .iter()
            .find(|(p, _)| p == "appsets/nginx-per-cluster.yaml")
            .map(|(_, t)| t.clone())
            .unwrap();
        assert!(appset.contains("git://127.0.0.1:9/edge-fleet.git"));
        assert!(!appset.contains(PLACEHOLDER_REPO_URL));
        for cluster in &clusters {
            let path = format!("deploy/overlays/{cluster}/kustomization.yaml");
            assert!(files.iter().any(|(p, _)| *p == path), "{path} missing");
        }
        // The fixture's own overlays are kept as they are.
        let first = files
            .iter()
            .find(|(p, _)| p == "deploy/overlays/cluster-1/kustomization.yaml")
            .map(|(_, t)| t.clone())
            .unwrap();
        assert!(first.contains("1.1.1.1"));
    }
}
