//! What tracing costs the hub: the ingest benchmark run alternately without tracing and with OTLP export (to a real receiver in this process) at a sampling ratio, each run a process of its own.

use std::process::{Command, Stdio};

use anyhow::Context as _;

use super::fanout::Backend;
use super::ingest::IngestBench;

/// Options of the tracing overhead benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct TracingOverheadBench {
    /// Sampling ratio of the traced runs (`OTEL_TRACES_SAMPLER=parentbased_traceidratio`).
    #[arg(long, default_value_t = 0.1)]
    pub ratio: f64,
    /// Runs of each kind, alternating (off, on, off, on, …).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[command(flatten)]
    pub ingest: IngestBench,
}

/// The figures of one `ingest` run.
#[derive(Debug, Clone, serde::Serialize)]
struct Run {
    traced: bool,
    changes_per_second: f64,
    visibility_p99_ms: f64,
}

impl TracingOverheadBench {
    pub fn run(self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.ratio > 0.0 && self.ratio <= 1.0,
            "--ratio must be in (0, 1]"
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        let receiver = runtime.block_on(edgecd_testkit::otlp::OtlpReceiver::start())?;
        let exe = std::env::current_exe().context("this benchmark's own path")?;
        let mut runs = Vec::new();
        for round in 0..self.rounds {
            for traced in [false, true] {
                eprintln!(
                    "Round {}/{}: ingest {}…",
                    round + 1,
                    self.rounds,
                    if traced { "traced" } else { "untraced" }
                );
                let mut command = Command::new(&exe);
                command
                    .args(self.ingest_args())
                    .env_remove("RUST_LOG")
                    .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .stdin(Stdio::null())
                    .stderr(Stdio::inherit());
                if traced {
                    command
                        .args(["--otlp-endpoint", &receiver.endpoint()])
                        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
                        .env("OTEL_TRACES_SAMPLER_ARG", self.ratio.to_string());
                }
                let output = command.output().context("running the ingest benchmark")?;
                anyhow::ensure!(
                    output.status.success(),
                    "the ingest run failed ({})",
                    output.status
                );
                let stdout = String::from_utf8_lossy(&output.stdout);
                let figures: serde_json::Value = stdout
                    .lines()
                    .rev()
                    .find_map(|l| serde_json::from_str(l).ok())
                    .context("no JSON figures from the ingest run")?;
                runs.push(Run {
                    traced,
                    changes_per_second: figures["changes_per_second"].as_f64().unwrap_or(0.0),
                    visibility_p99_ms: figures["visibility_p99_ms"].as_f64().unwrap_or(0.0),
                });
            }
        }
        let median = |traced: bool| {
            let mut rates: Vec<f64> = runs
                .iter()
                .filter(|r| r.traced == traced)
                .map(|r| r.changes_per_second)
                .collect();
            rates.sort_by(f64::total_cmp);
            rates.get(rates.len() / 2).copied().unwrap_or(0.0)
        };
        let (off, on) = (median(false), median(true));
        let ratio = if off > 0.0 { on / off } else { 0.0 };
        let spans = receiver.spans().len();
        println!(
            "{:<9} {:>6} {:>14} {:>18} {:>16} {:>11} {:>13}",
            "backend",
            "rounds",
            "sampling",
            "untraced chg/s",
            "traced chg/s",
            "traced/off",
            "spans kept"
        );
        println!(
            "{:<9} {:>6} {:>14} {:>18.0} {:>16.0} {:>11.3} {:>13}",
            format!("{:?}", self.ingest.backend).to_lowercase(),
            self.rounds,
            format!("{} %", self.ratio * 100.0),
            off,
            on,
            ratio,
            spans
        );
        let figures = serde_json::json!({
            "bench": "ingest-tracing",
            "backend": self.ingest.backend,
            "sampling_ratio": self.ratio,
            "runs": runs,
            "untraced_changes_per_second_median": off,
            "traced_changes_per_second_median": on,
            "traced_over_untraced": ratio,
            "spans_received": spans,
            "goal_traced_over_untraced": 0.95,
            "met": ratio >= 0.95,
        });
        println!("{figures}");
        Ok(())
    }

    /// `ingest` and its options, as this benchmark was given them.
    fn ingest_args(&self) -> Vec<String> {
        let i = &self.ingest;
        let mut args = vec![
            "ingest".to_owned(),
            format!("--spokes={}", i.spokes),
            format!("--apps={}", i.apps),
            format!("--batch={}", i.batch),
            format!("--window={}", i.window),
            format!("--seconds={}", i.seconds),
            format!(
                "--backend={}",
                match i.backend {
                    Backend::Sqlite => "sqlite",
                    Backend::Postgres => "postgres",
                }
            ),
        ];
        if let Some(rate) = i.rate {
            args.push(format!("--rate={rate}"));
        }
        args
    }
}
