//! Error handling of inputs the conformance corpus does not cover: remote URLs, symlink escapes, unknown
//! fields, repository-root escapes, and the plain directory source.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;

use edgecd_render::{RenderOptions, render};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn options(root: &Path) -> RenderOptions {
    RenderOptions {
        repo_root: Some(root.to_path_buf()),
        ..RenderOptions::default()
    }
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";

#[test]
fn remote_resources_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    write(
        &temp.path().join("kustomization.yaml"),
        "resources:\n- https://github.com/org/repo//deploy?ref=v1\n",
    );
    let err = render(temp.path(), &options(temp.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("remote") && err.contains("kustomization.yaml"),
        "{err}"
    );
}

#[test]
fn unknown_fields_name_the_file_and_field() {
    let temp = tempfile::tempdir().unwrap();
    write(
        &temp.path().join("kustomization.yaml"),
        "resourcez:\n- a.yaml\n",
    );
    let err = render(temp.path(), &options(temp.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown field 'resourcez'") && err.contains("kustomization.yaml"),
        "{err}"
    );
}

#[test]
fn symlinks_leaving_the_repository_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("secret.yaml"), CM);
    let repo = tempfile::tempdir().unwrap();
    write(
        &repo.path().join("app/kustomization.yaml"),
        "resources:\n- link.yaml\n",
    );
    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        repo.path().join("app/link.yaml"),
    )
    .unwrap();
    let err = render(&repo.path().join("app"), &options(repo.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not in or below"), "{err}");
    // A plain directory containing the same link is refused too.
    std::fs::remove_file(repo.path().join("app/kustomization.yaml")).unwrap();
    let err = render(&repo.path().join("app"), &options(repo.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not in or below"), "{err}");
}

#[test]
fn bases_outside_the_repository_root_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    write(
        &temp.path().join("base/kustomization.yaml"),
        "resources:\n- cm.yaml\n",
    );
    write(&temp.path().join("base/cm.yaml"), CM);
    write(
        &temp.path().join("repo/overlay/kustomization.yaml"),
        "resources:\n- ../../base\n",
    );
    let repo = temp.path().join("repo");
    let err = render(&repo.join("overlay"), &options(&repo))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not in or below"), "{err}");
}

#[test]
fn plain_directories_recurse_and_filter() {
    let temp = tempfile::tempdir().unwrap();
    write(&temp.path().join("a.yaml"), CM);
    write(
        &temp.path().join("sub/b.yml"),
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: s\n",
    );
    write(
        &temp.path().join("sub/c.json"),
        r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}}"#,
    );
    write(&temp.path().join("notes.txt"), "not yaml: [");
    // As Argo CD: only the directory's own files unless `recurse`.
    let top = render(temp.path(), &options(temp.path())).unwrap();
    let kinds: Vec<&str> = top.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap"]);
    let recursive = RenderOptions {
        recurse: true,
        ..options(temp.path())
    };
    let all = render(temp.path(), &recursive).unwrap();
    let kinds: Vec<&str> = all.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "Secret", "Service"]);
    let filtered = RenderOptions {
        exclude: vec!["sub/*.json".into()],
        ..recursive.clone()
    };
    assert_eq!(render(temp.path(), &filtered).unwrap().len(), 2);
    let included = RenderOptions {
        include: vec!["sub/**".into()],
        ..recursive.clone()
    };
    assert_eq!(render(temp.path(), &included).unwrap().len(), 2);
}

#[test]
fn malformed_yaml_names_the_file() {
    let temp = tempfile::tempdir().unwrap();
    write(&temp.path().join("bad.yaml"), "a: [1, 2\n");
    let err = render(temp.path(), &options(temp.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.yaml") && err.contains("yaml"), "{err}");
}
