//! Jsonnet programs in directory sources: objects and lists, extVars and TLAs (string and code), library paths,
//! `.libsonnet` imports, repository confinement, and runaway programs failing within their limits.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;
use std::time::{Duration, Instant};

use edgecd_render::{JsonnetLimits, JsonnetOptions, JsonnetVar, RenderOptions, render};
use serde_json::json;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn options(root: &Path, jsonnet: JsonnetOptions) -> RenderOptions {
    RenderOptions {
        repo_root: Some(root.to_path_buf()),
        jsonnet,
        ..RenderOptions::default()
    }
}

/// The error of rendering `dir` (its own repository root) with default Jsonnet options.
fn render_error(dir: &Path) -> String {
    render(dir, &options(dir, JsonnetOptions::default()))
        .unwrap_err()
        .to_string()
}

fn var(name: &str, value: &str, code: bool) -> JsonnetVar {
    JsonnetVar {
        name: name.into(),
        value: value.into(),
        code,
    }
}

fn names(objects: &[serde_json::Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn objects_lists_and_nested_lists_render_beside_yaml_and_libsonnet_is_not_rendered() {
    let temp = tempfile::tempdir().unwrap();
    let app = temp.path().join("app");
    write(
        &app.join("a.jsonnet"),
        "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, data: { n: std.toString(1 + 2) } }",
    );
    write(
        &app.join("b.jsonnet"),
        "local cm(n) = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n } };\n[cm('b1'), [cm('b2'), [cm('b3')]], null, { apiVersion: 'v1', kind: 'List', items: [cm('b4')] }]",
    );
    write(&app.join("lib.libsonnet"), "{ broken: ");
    write(
        &app.join("c.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    );
    let objects = render(&app, &options(temp.path(), JsonnetOptions::default())).unwrap();
    assert_eq!(names(&objects), ["a", "b1", "b2", "b3", "b4", "c"]);
    assert_eq!(objects[0]["data"], json!({"n": "3"}));
    // Integers stay integers.
    write(
        &app.join("d.jsonnet"),
        "{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 3, ratio: 0.5 } }",
    );
    let objects = render(&app, &options(temp.path(), JsonnetOptions::default())).unwrap();
    let d = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "d")
        .unwrap();
    assert_eq!(d["spec"], json!({"replicas": 3, "ratio": 0.5}));
    assert!(d["spec"]["replicas"].is_u64());
}

#[test]
fn scalar_output_is_an_error_naming_the_file() {
    let temp = tempfile::tempdir().unwrap();
    write(&temp.path().join("x.jsonnet"), "'just a string'");
    let err = render_error(temp.path());
    assert!(
        err.contains("x.jsonnet") && err.contains("a string"),
        "{err}"
    );
}

#[test]
fn ext_vars_and_tlas_as_strings_and_code() {
    let temp = tempfile::tempdir().unwrap();
    write(
        &temp.path().join("main.jsonnet"),
        "function(name, replicas=1, labels={}) {\n  apiVersion: 'v1', kind: 'ConfigMap',\n  metadata: { name: name, labels: labels },\n  data: { env: std.extVar('env'), replicas: std.toString(replicas), size: std.toString(std.extVar('size') * 2) },\n}\n",
    );
    let jsonnet = JsonnetOptions {
        ext_vars: vec![var("env", "prod", false), var("size", "20 + 1", true)],
        tlas: vec![
            var("name", "web", false),
            var("replicas", "1 + 2", true),
            var("labels", "{ team: 'edge' }", true),
        ],
        libs: vec![],
    };
    let objects = render(temp.path(), &options(temp.path(), jsonnet)).unwrap();
    assert_eq!(
        objects,
        [json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "data": {"env": "prod", "replicas": "3", "size": "42"},
            "metadata": {"labels": {"team": "edge"}, "name": "web"},
        })]
    );
    // A string TLA is a string, not code.
    let jsonnet = JsonnetOptions {
        ext_vars: vec![var("env", "dev", false), var("size", "1", true)],
        tlas: vec![var("name", "1 + 2", false)],
        libs: vec![],
    };
    let objects = render(temp.path(), &options(temp.path(), jsonnet)).unwrap();
    assert_eq!(objects[0]["metadata"]["name"], "1 + 2");
    // A missing external variable names itself and the file.
    let err = render(
        temp.path(),
        &options(
            temp.path(),
            JsonnetOptions {
                tlas: vec![var("name", "x", false)],
                ..JsonnetOptions::default()
            },
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("main.jsonnet") && err.contains("env"), "{err}");
}

#[test]
fn libs_and_libsonnet_imports_relative_to_the_repository() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path();
    write(
        &root.join("vendor/k/k.libsonnet"),
        "{ cm(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name } } }",
    );
    write(&root.join("apps/web/util.libsonnet"), "{ suffix: '-web' }");
    write(&root.join("apps/web/data.txt"), "hello");
    write(
        &root.join("apps/web/main.jsonnet"),
        "local k = import 'k/k.libsonnet';\nlocal u = import 'util.libsonnet';\nk.cm('app' + u.suffix) + { data: { text: importstr 'data.txt' } }\n",
    );
    let jsonnet = JsonnetOptions {
        libs: vec!["vendor".into()],
        ..JsonnetOptions::default()
    };
    let objects = render(&root.join("apps/web"), &options(root, jsonnet)).unwrap();
    assert_eq!(names(&objects), ["app-web"]);
    assert_eq!(objects[0]["data"]["text"], "hello");
    // Without the library path the import is not found, and the message names the file and line.
    let err = render(
        &root.join("apps/web"),
        &options(root, JsonnetOptions::default()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("main.jsonnet") && err.contains("k/k.libsonnet") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn imports_and_libs_leaving_the_repository_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("repo");
    write(&outer.path().join("secret.libsonnet"), "{ a: 1 }");
    write(
        &root.join("app/main.jsonnet"),
        "import '../../secret.libsonnet'",
    );
    let err = render(
        &root.join("app"),
        &options(&root, JsonnetOptions::default()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("main.jsonnet") && err.contains("outside the repository"),
        "{err}"
    );
    write(&root.join("app/main.jsonnet"), "import '/etc/hostname'");
    let err = render(
        &root.join("app"),
        &options(&root, JsonnetOptions::default()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("main.jsonnet") && err.contains("/etc/hostname"),
        "{err}"
    );
    write(&root.join("app/main.jsonnet"), "{}");
    let jsonnet = JsonnetOptions {
        libs: vec!["../".into()],
        ..JsonnetOptions::default()
    };
    let err = render(&root.join("app"), &options(&root, jsonnet))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'../'") && err.contains("outside the repository"),
        "{err}"
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(
            outer.path().join("secret.libsonnet"),
            root.join("app/link.libsonnet"),
        )
        .unwrap();
        write(&root.join("app/main.jsonnet"), "import 'link.libsonnet'");
        let err = render(
            &root.join("app"),
            &options(&root, JsonnetOptions::default()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("outside the repository"), "{err}");
    }
}

#[test]
fn syntax_errors_name_file_and_line() {
    let temp = tempfile::tempdir().unwrap();
    write(&temp.path().join("bad.jsonnet"), "{\n  a: 1,\n  b: ,\n}\n");
    let err = render_error(temp.path());
    assert!(err.contains("bad.jsonnet:3:"), "{err}");
    // In an imported library too.
    write(&temp.path().join("bad.jsonnet"), "import 'lib.libsonnet'");
    write(&temp.path().join("lib.libsonnet"), "local x = ;\nx");
    let err = render_error(temp.path());
    assert!(err.contains("lib.libsonnet:1:"), "{err}");
    // A runtime error names its line.
    write(
        &temp.path().join("bad.jsonnet"),
        "local o = {};\n\n{ x: o.missing }",
    );
    let err = render_error(temp.path());
    assert!(
        err.contains("bad.jsonnet:3:") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn runaway_programs_fail_within_the_limits() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("run.jsonnet");
    // Unbounded recursion: the stack limit.
    write(&file, "local f(x) = f(x + 1) + 1;\n{ a: f(0) }");
    let err = render_error(temp.path());
    assert!(
        err.contains("run.jsonnet") && err.contains("stack"),
        "{err}"
    );
    // A huge output: the output limit.
    write(
        &file,
        "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' + i } } for i in std.range(1, 200000)]",
    );
    let limited = RenderOptions {
        jsonnet_limits: JsonnetLimits {
            max_output_bytes: 1024 * 1024,
            ..JsonnetLimits::default()
        },
        ..options(temp.path(), JsonnetOptions::default())
    };
    let err = render(temp.path(), &limited).unwrap_err().to_string();
    assert!(
        err.contains("run.jsonnet") && err.contains("1048576 bytes"),
        "{err}"
    );
    // Deep nesting: refused before parsing.
    write(&file, &format!("{}1{}", "[".repeat(5000), "]".repeat(5000)));
    let err = render(temp.path(), &limited).unwrap_err().to_string();
    assert!(err.contains("nesting deeper"), "{err}");
    // A loop that neither recurses deeper nor allocates: the time limit.
    write(
        &file,
        "local loop(n) = if n == 0 then 0 else loop(n - 1) tailstrict;\n{ a: loop(1e15) }",
    );
    let timed = RenderOptions {
        jsonnet_limits: JsonnetLimits {
            timeout: Duration::from_millis(500),
            ..JsonnetLimits::default()
        },
        ..options(temp.path(), JsonnetOptions::default())
    };
    let started = Instant::now();
    let err = render(temp.path(), &timed).unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains("run.jsonnet") && err.contains("did not finish"),
        "{err}"
    );
}
