//! Shared by the Helm crate's integration tests: the fixture charts of `testdata/helm`, copying one into a scratch checkout, and finding a ConfigMap among rendered objects.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `testdata/helm`.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/helm");
/// The placeholder the fixture `parent`'s `Chart.yaml` names `lib`'s repository with.
pub const PLACEHOLDER: &str = "http://charts.invalid/replaced-by-the-test/";

/// A fixture chart (a directory of `testdata/helm`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// Copies the directory `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The ConfigMap `name` among `objects`.
pub fn config_map<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no ConfigMap {name} in {objects:?}"))
}
