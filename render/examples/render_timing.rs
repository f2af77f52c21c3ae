//! Times repeated renders of one directory (or of the generated 4,000-object kustomization) for profiling.
//!
//! `cargo run --release -p edgecd-render --example render_timing -- [DIR|--synthetic] [ITERATIONS]`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "--synthetic".into());
    let iterations: usize = args.next().map_or(Ok(5), |s| s.parse())?;
    let temp = std::env::temp_dir().join(format!("edgecd-render-timing-{}", std::process::id()));
    let dir = if target == "--synthetic" {
        edgecd_render::synthetic::write_kustomization(
            &temp,
            edgecd_render::synthetic::APPS_FOR_4000_OBJECTS,
        )?
    } else {
        std::path::PathBuf::from(target)
    };
    let options = edgecd_render::RenderOptions::default();
    let mut samples = Vec::new();
    let mut bytes = 0;
    for _ in 0..iterations {
        let start = Instant::now();
        let objects = edgecd_render::render(&dir, &options)?;
        let rendered = Instant::now();
        let text = edgecd_render::to_yaml(&objects);
        let emitted = Instant::now();
        bytes = text.len();
        samples.push((rendered - start, emitted - rendered, objects.len()));
    }
    for (render, emit, count) in &samples {
        println!(
            "{count} objects, {bytes} bytes: render {:.1} ms, emit {:.1} ms",
            render.as_secs_f64() * 1e3,
            emit.as_secs_f64() * 1e3
        );
    }
    if let Some(out) = std::env::var_os("OUT") {
        let objects = edgecd_render::render(&dir, &options)?;
        std::fs::write(out, edgecd_render::to_yaml(&objects))?;
    }
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    } else {
        println!("kept {}", dir.display());
    }
    Ok(())
}
