//! `edgecd-bench`: benchmarks of edgecd components; one subcommand per benchmark.

use clap::{Parser, Subcommand};
use edgecd_bench as bench;

#[derive(Debug, Parser)]
#[command(name = "edgecd-bench", about = "edgecd benchmarks")]
struct Args {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Native kustomize rendering versus `kubectl kustomize` / `kustomize build`, Jsonnet, and Helm charts through edgecd versus `helm template`.
    Render(bench::render::RenderBench),
    /// Spoke steady state: CPU per reconcile pass over 100 unchanged apps and peak RSS.
    Spoke(bench::spoke::SpokeBench),
    /// Fleet store: filtered, sorted pages of 100 apps out of 100,000 on SQLite and PostgreSQL.
    List(bench::list::ListBench),
    /// The `list` fleet on PostgreSQL: `EXPLAIN ANALYZE` of every statement of each scenario (stderr).
    ListExplain(bench::list::ListExplain),
    /// Hub ingest: simulated spokes streaming status changes; changes/s persisted and delay until visible in the API.
    Ingest(bench::ingest::IngestBench),
    /// Hub ingest with tracing on (OTLP export to an in-process receiver, sampled) against off, side by side.
    IngestTracing(bench::tracing_overhead::TracingOverheadBench),
    /// Hub fan-out: one bulk sync to 1,000 connected simulated spokes; time until each has it.
    Fanout(bench::fanout::FanoutBench),
    /// Hub streams: N concurrent spoke streams on one replica; memory per stream.
    Streams(bench::streams::StreamsBench),
    /// Faults: hub replicas on one PostgreSQL under load, a replica killed, a reconnect storm, a partition, PostgreSQL restarted; checks nothing acknowledged is lost.
    Faults(bench::faults::FaultsBench),
    /// Console in headless Chromium: first rendered app-table page and filter changes over 100,000 apps.
    Console(bench::console::ConsoleBench),
}

fn main() -> anyhow::Result<()> {
    // Logs of the in-process hub and spokes, when asked for (RUST_LOG=warn).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match Args::parse().command {
        Bench::Render(render) => render.run(),
        Bench::Spoke(spoke) => spoke.run(),
        Bench::List(list) => list.run(),
        Bench::ListExplain(explain) => explain.run(),
        Bench::Ingest(ingest) => ingest.run(),
        Bench::IngestTracing(bench) => bench.run(),
        Bench::Fanout(fanout) => fanout.run(),
        Bench::Streams(streams) => streams.run(),
        Bench::Console(console) => console.run(),
        Bench::Faults(faults) => faults.run(),
    }
}
