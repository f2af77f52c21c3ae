//! Argo CD's `source.kustomize` options (`RenderOptions::kustomize`): applied to the rendered kustomization
//! as `kustomize edit` would, with name references following the new names; ignored by plain directories.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;

use edgecd_render::{KustomizeEdits, RenderOptions, Value, render};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const CONFIG: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.19.0
        envFrom:
        - configMapRef: {name: settings}
";

fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn edits_apply_to_the_root_kustomization_and_references_follow() {
    let temp = tempfile::tempdir().unwrap();
    let base = temp.path().join("base");
    write(&base.join("config.yaml"), CONFIG);
    write(&base.join("deployment.yaml"), DEPLOYMENT);
    write(
        &base.join("kustomization.yaml"),
        "namePrefix: base-\nresources:\n- config.yaml\n- deployment.yaml\n",
    );
    let app = temp.path().join("app");
    write(
        &app.join("kustomization.yaml"),
        "namePrefix: own-\nresources:\n- ../base\n",
    );
    let plain = RenderOptions {
        repo_root: Some(temp.path().to_path_buf()),
        ..RenderOptions::default()
    };
    assert_eq!(
        names(&render(&app, &plain).unwrap()),
        ["own-base-settings", "own-base-web"]
    );

    let edited = RenderOptions {
        kustomize: Some(KustomizeEdits {
            name_prefix: Some("gen-7-".into()),
            name_suffix: Some("-x".into()),
            images: vec!["nginx:1.21".into()],
            replicas: vec![("web".into(), 3)],
            namespace: Some("generated".into()),
            common_labels: vec![("team".into(), "edge".into())],
            ..KustomizeEdits::default()
        }),
        ..plain.clone()
    };
    let objects = render(&app, &edited).unwrap();
    // The app's own prefix is replaced (`kustomize edit set nameprefix`); the base's stays.
    assert_eq!(
        names(&objects),
        ["gen-7-base-settings-x", "gen-7-base-web-x"]
    );
    let deployment = &objects[1];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"],
        "gen-7-base-settings-x"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.21"
    );
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["metadata"]["namespace"], "generated");
    assert_eq!(deployment["metadata"]["labels"]["team"], "edge");
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"]["team"],
        "edge"
    );

    // A plain directory has no kustomization to edit.
    let dir = temp.path().join("plain");
    write(&dir.join("config.yaml"), CONFIG);
    assert_eq!(names(&render(&dir, &edited).unwrap()), ["settings"]);
}

/// What `kubectl kustomize` (v5.5) builds for the kustomization Argo CD's edits leave behind
/// (`add label --without-selector --include-templates team=edge`, `add annotation --force owner=app-demo`,
/// the app's `patches` appended, `add component ../comp`), recorded by hand from kubectl.
const KUBECTL_EDITED: &str = "apiVersion: v1
data:
  a: b
kind: ConfigMap
metadata:
  annotations:
    owner: app-demo
  labels:
    team: edge
    tier: front
  name: extra
---
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    owner: app-demo
  labels:
    app: web
    team: edge
    tier: front
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
      tier: front
  template:
    metadata:
      annotations:
        owner: app-demo
      labels:
        app: web
        team: edge
        tier: front
    spec:
      containers:
      - image: nginx:1.19.0
        name: web
      nodeSelector:
        env: pro
";

#[test]
fn labels_without_selector_forced_annotations_patches_and_components_match_kubectl() {
    let temp = tempfile::tempdir().unwrap();
    let app = temp.path().join("app");
    write(
        &app.join("deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web, tier: front}\n  annotations: {owner: base}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.19.0\n",
    );
    write(
        &app.join("kustomization.yaml"),
        "resources:\n- deployment.yaml\ncommonLabels:\n  tier: front\ncommonAnnotations:\n  owner: base\n",
    );
    let comp = temp.path().join("comp");
    write(
        &comp.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- extra.yaml\n",
    );
    write(
        &comp.join("extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n",
    );
    let edits = KustomizeEdits {
        common_labels: vec![("team".into(), "edge".into())],
        label_without_selector: true,
        label_include_templates: true,
        common_annotations: vec![("owner".into(), "app-demo".into())],
        force_common_annotations: true,
        patches: vec![
            r#"{"target": {"kind": "Deployment", "name": "web"}, "patch": "- op: add\n  path: /spec/template/spec/nodeSelector\n  value:\n    env: pro"}"#.into(),
        ],
        components: vec!["../comp".into(), "../missing".into()],
        ignore_missing_components: true,
        ..KustomizeEdits::default()
    };
    let options = RenderOptions {
        repo_root: Some(temp.path().to_path_buf()),
        kustomize: Some(edits.clone()),
        ..RenderOptions::default()
    };
    let objects = render(&app, &options).unwrap();
    assert_eq!(edgecd_render::to_yaml(&objects), KUBECTL_EDITED);

    // Without --force, a key the kustomization already has fails the build, naming it (as Argo CD's).
    let unforced = RenderOptions {
        kustomize: Some(KustomizeEdits {
            force_common_annotations: false,
            ..edits.clone()
        }),
        ..options.clone()
    };
    let err = render(&app, &unforced).unwrap_err().to_string();
    assert!(
        err.contains("annotation owner is already in the kustomization")
            && err.contains("forceCommonAnnotations"),
        "{err}"
    );
    // A missing component fails unless ignoreMissingComponents.
    let strict = RenderOptions {
        kustomize: Some(KustomizeEdits {
            ignore_missing_components: false,
            ..edits
        }),
        ..options
    };
    assert!(render(&app, &strict).is_err());
}
