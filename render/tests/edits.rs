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
