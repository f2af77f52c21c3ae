//! What CI checks instead of building the container images (its machines have no Docker daemon): `images/Dockerfile`, `.dockerignore` and `.github/workflows/release.yml` read and held against the workspace (packages, binaries, profile, rust-version), `scripts/helm-build`'s helm pin, the spoke's `--helm-binary`, the charts (image repositories and tags, user, read-only root and its mounts, entrypoint and args) and each other. See docs/images.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use edgecd_e2e::images::{self, Dockerfile, Image, ShellCommand, Stage};
use serde_json::Value;

const HELM_BUILD: &str = "scripts/helm-build";
const WORKFLOW: &str = ".github/workflows/release.yml";
const DOCKERIGNORE: &str = ".dockerignore";

fn read(path: &str) -> String {
    let full = images::repo_root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

fn yaml(path: &str) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn dockerfile() -> Dockerfile {
    Dockerfile::read().unwrap()
}

fn values(image: Image) -> Value {
    yaml(&format!("{}/values.yaml", image.chart()))
}

fn deployment_template(image: Image) -> String {
    read(&format!("{}/templates/deployment.yaml", image.chart()))
}

fn target_stage(file: &Dockerfile, image: Image) -> &Stage {
    file.stage(image.target())
        .unwrap_or_else(|| panic!("{} has no stage {}", images::DOCKERFILE, image.target()))
}

/// `cargo metadata --no-deps` of the workspace.
fn cargo_metadata() -> Value {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(images::repo_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The workspace package `name` in `cargo metadata`.
fn package<'a>(metadata: &'a Value, name: &str) -> &'a Value {
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is no package of the workspace"))
}

/// `1.95.0` → `[1, 95, 0]`.
fn version_numbers(version: &str) -> Vec<u32> {
    version
        .split('.')
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{version} is not a release number"))
        })
        .collect()
}

fn at_least(version: &str, minimum: &str) -> bool {
    let (mut a, mut b) = (version_numbers(version), version_numbers(minimum));
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    a >= b
}

/// The commands of every `RUN` of `stage`.
fn run_commands(stage: &Stage) -> Vec<ShellCommand> {
    stage
        .runs()
        .flat_map(|run| images::shell_commands(&run.rest))
        .collect()
}

/// The value of `key: value` lines of a template, unquoted, in order.
fn template_values<'a>(template: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}:");
    template
        .lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            line.strip_prefix(&prefix)
        })
        .map(|value| value.trim().trim_matches('"'))
        .collect()
}

/// The env vars of a template given as a literal value (`- name: X` then `value: V`).
fn template_env(template: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = template.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter_map(|pair| {
            let name = pair[0].strip_prefix("- name: ")?;
            let value = pair[1].strip_prefix("value: ")?;
            Some((name.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// Whether `path` is `mount` or inside it.
fn under(path: &str, mount: &str) -> bool {
    path == mount || path.starts_with(&format!("{}/", mount.trim_end_matches('/')))
}

#[test]
fn each_image_runs_a_workspace_binary_built_by_cargo_as_its_entrypoint() {
    let file = dockerfile();
    let metadata = cargo_metadata();
    let manifest = read("Cargo.toml");
    let mut built = BTreeSet::new();
    for image in Image::ALL {
        let entry = file.entrypoint_build(image).unwrap();
        // What the chart tests start (images::entrypoint_binary) is that binary of that package.
        assert_eq!(
            images::entrypoint_binary(image).unwrap(),
            (entry.package.clone(), entry.bin.clone())
        );
        let package = package(&metadata, &entry.package);
        let bins: Vec<&str> = package["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(
            bins.contains(&entry.bin.as_str()),
            "{image:?}: package {} has bins {bins:?}, not {}",
            entry.package,
            entry.bin
        );
        assert!(
            entry.build.locked,
            "{image:?}: `cargo build` without --locked"
        );
        let profile = entry.build.profile.as_str();
        assert!(
            matches!(profile, "dev" | "release")
                || manifest.contains(&format!("[profile.{profile}]")),
            "{image:?}: profile {profile} is not one of the workspace's"
        );
        // The binary copied out of the build is the one cargo wrote for that profile (and target).
        let output = match &entry.build.target {
            Some(target) => format!(
                "target/{target}/{}/{}",
                entry.build.profile_dir(),
                entry.bin
            ),
            None => format!("target/{}/{}", entry.build.profile_dir(), entry.bin),
        };
        let commands = images::shell_commands(&entry.run);
        assert!(
            commands.iter().any(|c| {
                matches!(c.words[0].as_str(), "install" | "cp" | "mv")
                    && c.words.last() == Some(&entry.source)
                    && c.words.contains(&output)
            }),
            "{image:?}: stage {} does not put {output} at {}",
            entry.stage,
            entry.source
        );
        built.insert(entry.package.clone());

        // The chart runs the image's entrypoint (no command of its own) with the image's CMD as args.
        let template = deployment_template(image);
        assert!(
            template_values(&template, "command").is_empty(),
            "{}: the container sets a command; the image's ENTRYPOINT {} would not run",
            image.chart(),
            entry.path
        );
        let args = template_values(&template, "args");
        assert_eq!(args.len(), 1, "{}: args {args:?}", image.chart());
        assert_eq!(
            images::exec_form(args[0]).unwrap(),
            target_stage(&file, image).cmd().unwrap(),
            "{}: the container's args differ from the image's CMD",
            image.chart()
        );
    }
    assert_eq!(built.len(), Image::ALL.len(), "two images, one binary");
}

#[test]
fn the_rust_builder_is_the_pinned_stable_release_cross_compiling_for_every_platform() {
    let file = dockerfile();
    let metadata = cargo_metadata();
    let rust = file
        .global_arg("RUST_VERSION")
        .expect("a global ARG RUST_VERSION=…");
    let toolchain = read("rust-toolchain.toml");
    let channel = toolchain
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel"))
        .map(|v| v.trim().trim_start_matches('=').trim().trim_matches('"'))
        .expect("rust-toolchain.toml names a channel");
    if channel == "stable" {
        version_numbers(rust);
    } else {
        assert_eq!(rust, channel, "rust-toolchain.toml pins {channel}");
    }

    for image in Image::ALL {
        let entry = file.entrypoint_build(image).unwrap();
        let minimum = package(&metadata, &entry.package)["rust_version"]
            .as_str()
            .expect("a rust-version");
        assert!(
            at_least(rust, minimum),
            "RUST_VERSION {rust} is below {}'s rust-version {minimum}",
            entry.package
        );
        let lineage = file.lineage(&entry.stage);
        let root = lineage.last().unwrap();
        let base = file.expand(&root.base);
        assert!(
            base.starts_with(&format!("rust:{rust}-")),
            "{image:?}: {} is built FROM {base}, not the rust:{rust} image",
            entry.stage
        );
        // The image's toolchain, not the newest stable that rust-toolchain.toml would have rustup fetch.
        let declaring = lineage
            .iter()
            .find(|s| s.env_var("RUSTUP_TOOLCHAIN").is_some())
            .expect("ENV RUSTUP_TOOLCHAIN in the Rust build stages");
        assert_eq!(
            declaring.env_var("RUSTUP_TOOLCHAIN").unwrap(),
            "${RUST_VERSION}"
        );
        assert!(
            declaring.all("ARG").any(|a| a.rest == "RUST_VERSION"),
            "the stage setting RUSTUP_TOOLCHAIN must declare ARG RUST_VERSION (else it is empty there)"
        );

        // Built against the Debian release the runtime image is: the binaries need its glibc and libssl3.
        let codename = base.rsplit('-').next().unwrap();
        let release = match codename {
            "bullseye" => "11",
            "bookworm" => "12",
            "trixie" => "13",
            other => panic!("{base}: Debian release {other} not known here"),
        };
        let runtime = file.expand(&target_stage(&file, image).base);
        assert!(
            runtime.contains(&format!("-debian{release}")),
            "{image:?}: built on Debian {codename} ({release}), run on {runtime}"
        );
    }

    // Nothing runs on the target platform (no emulation): every stage that runs commands is on the build
    // machine's platform, and the final stages only copy.
    for stage in &file.stages {
        if stage.runs().next().is_some() {
            let name = stage.name.as_deref().unwrap_or(&stage.base);
            // A stage built FROM another stage runs on that one's platform.
            let platform = match &stage.name {
                Some(name) => file.lineage(name).iter().find_map(|s| s.platform.clone()),
                None => stage.platform.clone(),
            };
            assert_eq!(
                platform.as_deref(),
                Some("$BUILDPLATFORM"),
                "stage {name} runs commands on the target platform"
            );
        }
    }
    // The Rust stage maps every architecture the release builds to a target triple.
    let workflow = yaml(WORKFLOW);
    let rust_stage = file
        .lineage(&file.entrypoint_build(Image::Hub).unwrap().stage)
        .last()
        .copied()
        .unwrap();
    let runs: String = rust_stage.runs().map(|r| r.rest.clone()).collect();
    for platform in build_steps(&workflow)
        .iter()
        .flat_map(|s| list(&s["with"]["platforms"]))
    {
        let arch = platform
            .strip_prefix("linux/")
            .unwrap_or_else(|| panic!("platform {platform} is not linux/…"));
        assert!(
            runs.contains(&format!("{arch})")),
            "the Rust stage has no case for TARGETARCH {arch}"
        );
    }
}

/// `scripts/helm-build`'s default version and its `go install` command.
fn helm_build() -> (String, ShellCommand) {
    let script = read(HELM_BUILD);
    let pin = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("version=${EDGECD_HELM_VERSION:-"))
        .and_then(|rest| rest.strip_suffix('}'))
        .expect("scripts/helm-build: version=${EDGECD_HELM_VERSION:-…}")
        .to_owned();
    let install = images::shell_commands(&script)
        .into_iter()
        .find(|c| c.starts_with(&["go", "install"]))
        .expect("scripts/helm-build runs go install");
    (pin, install)
}

/// `go install`'s arguments with the version variable `var` replaced by `version`.
fn go_install_args(command: &ShellCommand, var: &str, version: &str) -> Vec<String> {
    command.words[2..]
        .iter()
        .map(|w| w.replace(var, version))
        .collect()
}

#[test]
fn the_spoke_image_ships_the_helm_scripts_helm_build_pins_where_the_spoke_looks() {
    let file = dockerfile();
    let (pin, script_install) = helm_build();
    let image_pin = file
        .global_arg("HELM_VERSION")
        .expect("a global ARG HELM_VERSION=…");
    assert_eq!(image_pin, pin, "{HELM_BUILD} builds helm {pin}");

    // The stage building helm: same module@version, same -ldflags, same GOFLAGS as the script.
    let (helm_stage, image_install) = file
        .stages
        .iter()
        .find_map(|s| {
            run_commands(s)
                .into_iter()
                .find(|c| c.starts_with(&["go", "install"]))
                .map(|c| (s, c))
        })
        .expect("a stage runs go install");
    assert!(
        helm_stage.all("ARG").any(|a| a.rest == "HELM_VERSION"),
        "the helm stage must declare ARG HELM_VERSION to see the pin"
    );
    assert_eq!(
        go_install_args(&image_install, "${HELM_VERSION}", image_pin),
        go_install_args(&script_install, "$version", &pin),
        "the image builds helm otherwise than {HELM_BUILD}"
    );
    assert_eq!(
        image_install.assignment("GOFLAGS"),
        script_install.assignment("GOFLAGS")
    );
    assert!(
        image_install
            .words
            .iter()
            .any(|w| w.ends_with(&format!("@{pin}")) || w.ends_with("@${HELM_VERSION}")),
        "go install names no module version"
    );

    // The spoke image copies it to where the spoke runs it from: its --helm-binary default on the PATH.
    let helm_stage_name = helm_stage.name.clone().expect("the helm stage is named");
    let spoke = target_stage(&file, Image::Spoke);
    let copy = spoke
        .copies()
        .unwrap()
        .into_iter()
        .find(|c| c.from.as_deref() == Some(helm_stage_name.as_str()))
        .expect("the spoke image copies helm");
    let run =
        <edgecd_spoke::runtime::RunArgs as clap::Args>::augment_args(clap::Command::new("run"));
    let default: Vec<String> = run
        .get_arguments()
        .find(|a| a.get_id() == "helm_binary")
        .expect("edgecd-spoke run --helm-binary")
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let default = default.first().expect("--helm-binary has a default");
    let path = spoke.env_var("PATH").expect("the spoke image sets PATH");
    let (dir, name) = copy.dest.rsplit_once('/').unwrap();
    if default.starts_with('/') {
        assert_eq!(&copy.dest, default);
    } else {
        assert_eq!(name, default, "the spoke runs {default:?} from PATH");
        assert!(
            path.split(':').any(|p| p == dir),
            "{dir} is not on the spoke image's PATH {path}"
        );
    }
    // The hub image ships the same helm on its PATH, for Helm app-of-apps parents (`--helm-binary`'s
    // default, `helm`, as the spoke's).
    let hub = target_stage(&file, Image::Hub);
    let hub_copy = hub
        .copies()
        .unwrap()
        .into_iter()
        .find(|c| c.from.as_deref() == Some(helm_stage_name.as_str()))
        .expect("the hub image copies helm");
    let hub_path = hub.env_var("PATH").expect("the hub image sets PATH");
    let (hub_dir, hub_name) = hub_copy.dest.rsplit_once('/').unwrap();
    assert_eq!(hub_name, "helm", "the hub runs helm from PATH");
    assert!(
        hub_path.split(':').any(|p| p == hub_dir),
        "{hub_dir} is not on the hub image's PATH {hub_path}"
    );
    // The chart keeps that default, and says which helm the image ships.
    let chart = values(Image::Spoke);
    assert_eq!(chart["helmBinary"], "", "the chart overrides --helm-binary");
    let helm_values = read(&format!("{}/values.yaml", Image::Spoke.chart()));
    assert!(
        helm_values.contains(&format!("the image ships Helm {pin}")),
        "{}/values.yaml names another helm than {pin}",
        Image::Spoke.chart()
    );
    // The crate that runs helm names the same pin.
    let helm_lib = read("helm/src/lib.rs");
    assert!(
        helm_lib.contains(&format!("pub const PINNED_HELM_VERSION: &str = \"{pin}\";")),
        "helm/src/lib.rs: PINNED_HELM_VERSION is not {pin}"
    );
}

#[test]
fn the_images_run_as_the_charts_user_and_write_only_to_the_charts_volumes() {
    let file = dockerfile();
    for image in Image::ALL {
        let stage = target_stage(&file, image);
        let (uid, gid) = stage.user().unwrap();
        let chart = values(image);
        let pod = &chart["podSecurityContext"];
        assert_eq!(
            pod["runAsUser"].as_u64(),
            Some(u64::from(uid)),
            "{image:?}: the image's USER is {uid}, the chart's runAsUser {}",
            pod["runAsUser"]
        );
        assert_eq!(
            pod["runAsGroup"].as_u64(),
            gid.map(u64::from),
            "{image:?}: the image's group differs from the chart's runAsGroup"
        );
        if pod["runAsNonRoot"] == true {
            assert_ne!(uid, 0, "{image:?}: runAsNonRoot with USER 0");
        }
        assert_eq!(
            chart["securityContext"]["readOnlyRootFilesystem"], true,
            "{image:?}: the chart's root file system is writable; this check assumes it is not"
        );

        // With a read-only root, every directory the image or the chart points the binary at for writing
        // is one of the chart's volume mounts.
        let template = deployment_template(image);
        let mounts = template_values(&template, "mountPath");
        assert!(!mounts.is_empty());
        let mut writable: Vec<(String, String)> = stage
            .env()
            .into_iter()
            .filter(|(name, _)| {
                name == "HOME"
                    || name == "TMPDIR"
                    || name.starts_with("XDG_")
                    || name.ends_with("_DIR")
            })
            .map(|(name, value)| (format!("image ENV {name}"), value))
            .collect();
        writable.extend(
            template_env(&template)
                .into_iter()
                .filter(|(name, value)| {
                    (name == "TMPDIR" || name == "HOME" || name.ends_with("_DIR"))
                        && value.starts_with('/')
                })
                .map(|(name, value)| (format!("chart env {name}"), value)),
        );
        assert!(
            writable.iter().any(|(what, _)| what == "image ENV HOME"),
            "{image:?}: the image sets no HOME (distroless's is on the read-only root)"
        );
        for (what, path) in writable {
            assert!(
                mounts.iter().any(|m| under(&path, m)),
                "{image:?}: {what}={path} is on the read-only root, outside the chart's mounts {mounts:?}"
            );
        }
    }
}

/// The workflow's `docker/build-push-action` steps.
fn build_steps(workflow: &Value) -> Vec<&Value> {
    workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_array().unwrap())
        .filter(|step| {
            step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action@"))
        })
        .collect()
}

/// A comma- or newline-separated list input of an action.
fn list(value: &Value) -> Vec<String> {
    value
        .as_str()
        .unwrap_or_default()
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn steps(workflow: &Value) -> Vec<&Value> {
    workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_array().unwrap())
        .collect()
}

#[test]
fn the_release_workflow_pushes_each_image_to_its_charts_repository_at_the_app_version() {
    let workflow = yaml(WORKFLOW);
    let file = dockerfile();
    assert!(
        workflow["on"]["push"]["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "v*")),
        "the workflow runs on tags v*"
    );
    let build_steps = build_steps(&workflow);
    let all_steps = steps(&workflow);
    for image in Image::ALL {
        let chart = values(image);
        let repository = chart["image"]["repository"].as_str().unwrap();
        let chart_yaml = yaml(&format!("{}/Chart.yaml", image.chart()));
        assert!(chart_yaml["appVersion"].is_string());
        // The chart's image tag defaults to its appVersion.
        assert_eq!(chart["image"]["tag"], "", "{image:?}: image.tag is set");
        assert!(
            deployment_template(image).contains(
                "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
            ),
            "{image:?}: the container's image is not repository:(tag or appVersion)"
        );

        let steps: Vec<&&Value> = build_steps
            .iter()
            .filter(|s| s["with"]["target"] == image.target())
            .collect();
        assert_eq!(
            steps.len(),
            1,
            "{image:?}: one build of target {}",
            image.target()
        );
        let with = &steps[0]["with"];
        assert_eq!(with["file"], images::DOCKERFILE);
        assert_eq!(with["context"], ".");
        assert_eq!(with["push"], true);
        let platforms: BTreeSet<String> = list(&with["platforms"]).into_iter().collect();
        for arch in ["linux/amd64", "linux/arm64"] {
            assert!(platforms.contains(arch), "{image:?}: not built for {arch}");
        }
        assert!(file.stage(image.target()).is_some());

        let tags = list(&with["tags"]);
        assert!(!tags.is_empty());
        for tag in tags {
            let (name, version) = tag
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("tag {tag} has no version"));
            assert_eq!(
                name, repository,
                "{image:?}: pushed to {name}, the chart pulls {repository}"
            );
            // The version is the git tag less its v, checked against both charts' appVersion.
            let id = version
                .trim()
                .strip_prefix("${{ steps.")
                .and_then(|v| v.strip_suffix(".outputs.version }}"))
                .unwrap_or_else(|| panic!("{image:?}: tag {tag} is not the version step's output"));
            let step = all_steps
                .iter()
                .find(|s| s["id"] == id)
                .unwrap_or_else(|| panic!("no step {id}"));
            let run = step["run"].as_str().unwrap();
            assert!(run.contains("${GITHUB_REF_NAME#v}") && run.contains("appVersion"));
            for chart in Image::ALL {
                assert!(
                    run.contains(chart.chart()),
                    "the version step does not check {}'s appVersion",
                    chart.chart()
                );
            }
        }
    }

    // The charts: packaged and pushed with the pinned helm, built by the Go the spoke image's helm is.
    let charts = all_steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|run| run.contains(" package "))
        .expect("a step packages the charts");
    assert!(charts.contains(&format!("$({HELM_BUILD})")));
    assert!(charts.contains(" push ") && charts.contains("oci://"));
    for image in Image::ALL {
        assert!(
            charts.contains(image.chart()),
            "{} is not packaged",
            image.chart()
        );
    }
    let go = all_steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/setup-go@"))
        })
        .expect("a setup-go step for scripts/helm-build");
    assert_eq!(
        go["with"]["go-version"].as_str(),
        file.global_arg("GO_VERSION"),
        "the release's Go differs from the Dockerfile's GO_VERSION"
    );
}

/// Whether `.dockerignore` leaves `path` (relative, `/`-separated) out of the context: the last pattern
/// matching it or one of its parents decides (`!` patterns bring it back).
fn ignored(patterns: &[&str], path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let mut out = false;
    for pattern in patterns {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, *pattern),
        };
        let pattern: Vec<&str> = pattern
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .collect();
        if (1..=parts.len()).any(|n| glob(&pattern, &parts[..n])) {
            out = !negated;
        }
    }
    out
}

/// Path components against pattern components (`**` any number of them, `*` and `?` inside one).
fn glob(pattern: &[&str], parts: &[&str]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((&"**", rest)) => (0..=parts.len()).any(|n| glob(rest, &parts[n..])),
        Some((first, rest)) => {
            parts
                .split_first()
                .is_some_and(|(part, _)| component(first.as_bytes(), part.as_bytes()))
                && glob(rest, &parts[1..])
        }
    }
}

fn component(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|n| component(rest, &name[n..])),
        Some((b'?', rest)) => !name.is_empty() && component(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && component(rest, &name[1..]),
    }
}

#[test]
fn the_docker_context_leaves_out_build_output_and_git_but_nothing_the_build_reads() {
    let text = read(DOCKERIGNORE);
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(ignored(&patterns, "target"), "{DOCKERIGNORE} keeps target/");
    assert!(
        ignored(&patterns, "render/fuzz/target"),
        "{DOCKERIGNORE} keeps nested target/ directories"
    );
    assert!(ignored(&patterns, ".git"), "{DOCKERIGNORE} keeps .git");

    // Cargo loads every member of the workspace, whichever package it builds.
    let metadata = cargo_metadata();
    let root = Path::new(metadata["workspace_root"].as_str().unwrap());
    let mut needed = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "rust-toolchain.toml".to_owned(),
        ".cargo/config.toml".to_owned(),
    ];
    for package in metadata["packages"].as_array().unwrap() {
        let manifest = Path::new(package["manifest_path"].as_str().unwrap());
        let dir = manifest.parent().unwrap().strip_prefix(root).unwrap();
        needed.push(dir.join("Cargo.toml").to_string_lossy().into_owned());
        for target in package["targets"].as_array().unwrap() {
            let src = Path::new(target["src_path"].as_str().unwrap());
            needed.push(
                src.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    // What the Dockerfile copies from the context.
    let file = dockerfile();
    for stage in &file.stages {
        for copy in stage.copies().unwrap() {
            if copy.from.is_none() {
                needed.extend(copy.sources.iter().filter(|s| *s != ".").cloned());
            }
        }
    }
    for path in needed {
        assert!(
            !ignored(&patterns, &path),
            "{DOCKERIGNORE} leaves out {path}, which the image build reads"
        );
    }
}
