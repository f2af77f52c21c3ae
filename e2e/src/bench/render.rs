//! `edgecd-bench render`: native kustomize rendering versus the external `kubectl kustomize` process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Options of the render benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderBench {
    /// Overlay directories to render (default: the talk demo overlays under testdata/).
    #[arg(long = "dir")]
    pub dirs: Vec<PathBuf>,
    /// Native renders per overlay.
    #[arg(long, default_value_t = 300)]
    pub iterations: usize,
    /// External-process runs per overlay.
    #[arg(long, default_value_t = 10)]
    pub external_iterations: usize,
}

/// Figures for one overlay.
#[derive(Debug, serde::Serialize)]
struct Row {
    overlay: String,
    native_median_us: f64,
    native_renders_per_sec: f64,
    external_median_us: Option<f64>,
    ratio: Option<f64>,
}

impl RenderBench {
    /// Runs the benchmark, printing a table and, as the last line, a JSON summary.
    pub fn run(self) -> anyhow::Result<()> {
        let dirs = if self.dirs.is_empty() {
            default_overlays()?
        } else {
            self.dirs.clone()
        };
        let external = find_external();
        let mut rows = Vec::new();
        for dir in &dirs {
            let native = time_native(dir, self.iterations.max(1))?;
            let external_median = match &external {
                Some(tool) => Some(time_external(tool, dir, self.external_iterations.max(1))?),
                None => None,
            };
            let native_median_us = micros(median(&native));
            let total: Duration = native.iter().sum();
            let external_median_us = external_median.map(micros);
            rows.push(Row {
                overlay: dir.display().to_string(),
                native_median_us,
                native_renders_per_sec: native.len() as f64 / total.as_secs_f64(),
                external_median_us,
                ratio: external_median_us.map(|e| e / native_median_us),
            });
        }
        let tool = external
            .as_ref()
            .map_or("none".to_string(), |t| t.join(" "));
        println!(
            "{:<50} {:>14} {:>12} {:>16} {:>8}",
            "overlay", "native µs(med)", "renders/s", "external µs(med)", "ratio"
        );
        for row in &rows {
            println!(
                "{:<50} {:>14.1} {:>12.0} {:>16} {:>8}",
                shorten(&row.overlay),
                row.native_median_us,
                row.native_renders_per_sec,
                row.external_median_us
                    .map_or("-".into(), |v| format!("{v:.0}")),
                row.ratio.map_or("-".into(), |v| format!("{v:.0}x")),
            );
        }
        let native_median = median_f64(rows.iter().map(|r| r.native_median_us).collect());
        let external_median = rows
            .iter()
            .map(|r| r.external_median_us)
            .collect::<Option<Vec<f64>>>()
            .map(median_f64);
        let summary = serde_json::json!({
            "bench": "render",
            "external_tool": tool,
            "overlays": rows.len(),
            "iterations": self.iterations,
            "native_median_us": native_median,
            "native_renders_per_sec": rows.iter().map(|r| r.native_renders_per_sec).sum::<f64>() / rows.len().max(1) as f64,
            "external_median_us": external_median,
            "ratio": external_median.map(|e| e / native_median),
            "rows": rows,
        });
        println!("{summary}");
        Ok(())
    }
}

fn default_overlays() -> anyhow::Result<Vec<PathBuf>> {
    let base = crate::testdata().join("talk-demo-repo/deploy/overlays");
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

fn time_native(dir: &Path, iterations: usize) -> anyhow::Result<Vec<Duration>> {
    let options = edgecd_render::RenderOptions::default();
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let objects = edgecd_render::render(dir, &options)
            .with_context(|| format!("rendering {}", dir.display()))?;
        let text = edgecd_render::to_yaml(&objects);
        std::hint::black_box(text);
        samples.push(start.elapsed());
    }
    Ok(samples)
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

fn time_external(tool: &[String], dir: &Path, iterations: usize) -> anyhow::Result<Duration> {
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let output = Command::new(&tool[0])
            .args(&tool[1..])
            .arg(dir)
            .output()
            .context("running the external tool")?;
        samples.push(start.elapsed());
        if !output.status.success() {
            bail!(
                "{} failed on {}: {}",
                tool.join(" "),
                dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    Ok(median(&samples))
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn median_f64(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn shorten(path: &str) -> String {
    let parts: Vec<&str> = path.rsplit('/').take(3).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}
