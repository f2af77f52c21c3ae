//! The CLI's span: one trace per invocation, its W3C context sent with every call to the hub, exported over OTLP when configured, its id printed.

use std::sync::OnceLock;
use std::time::Duration;

use edgecd_proto::client::TraceHeaders;
use edgecd_telemetry::TraceContext;
use opentelemetry::trace::{
    SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The invocation's trace headers, read by every client the session builds.
static HEADERS: OnceLock<TraceHeaders> = OnceLock::new();

/// Whether a client for the hub was configured (the trace id is printed only then).
static USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The headers to send with calls, once [`start`] has run; notes that the hub is being called.
pub fn headers() -> Option<&'static TraceHeaders> {
    USED.store(true, std::sync::atomic::Ordering::Relaxed);
    HEADERS.get()
}

/// The subcommand path of this invocation (`app sync`), for the span's name.
pub fn command_path() -> String {
    let mut command = <crate::args::Cli as clap::CommandFactory>::command();
    let mut path = Vec::new();
    for word in std::env::args().skip(1) {
        if word.starts_with('-') {
            continue;
        }
        let Some(sub) = command.find_subcommand(&word).cloned() else {
            continue;
        };
        path.push(sub.get_name().to_owned());
        command = sub;
    }
    path.join(" ")
}

/// The invocation's span and the provider that exports it.
#[derive(Debug)]
pub struct Invocation {
    provider: SdkTracerProvider,
    exporting: bool,
    cx: opentelemetry::Context,
    trace_id: String,
}

/// Starts the span `edgecd <command>`: sampled, so the hub and spokes record what it sets off. Must run inside
/// the Tokio runtime. `None` when the exporter cannot be built (the reason goes to stderr; the command runs
/// untraced).
pub fn start(command: &str) -> Option<Invocation> {
    let endpoint = std::env::var("EDGECD_OTLP_ENDPOINT").ok();
    let (provider, exporting) =
        match edgecd_telemetry::provider_without_subscriber("edgecd-cli", endpoint.as_deref()) {
            Ok(pair) => pair,
            Err(error) => {
                noteln!("warning: traces are off: {error}");
                return None;
            }
        };
    let tracer = provider.tracer("edgecd-cli");
    let span = tracer
        .span_builder(format!("edgecd {command}"))
        .with_kind(SpanKind::Client)
        .start(&tracer);
    let cx = opentelemetry::Context::new().with_span(span);
    let trace = TraceContext::of(&cx)?;
    let trace_id = trace.trace_id().to_owned();
    let _ = HEADERS.set(TraceHeaders {
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
    });
    Some(Invocation {
        provider,
        exporting,
        cx,
        trace_id,
    })
}

impl Invocation {
    /// Ends the span with the command's outcome and exports it (waiting at most 5 s for the collector);
    /// prints the trace id on stderr when the command called the hub.
    pub async fn finish(self, error: Option<&anyhow::Error>) {
        if USED.load(std::sync::atomic::Ordering::Relaxed) {
            noteln!("trace id: {}", self.trace_id);
        }
        let span = self.cx.span();
        if let Some(error) = error {
            span.set_status(Status::error(format!("{error:#}")));
        }
        span.end();
        if self.exporting {
            let provider = self.provider;
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5)) {
                    eprintln!("warning: exporting the trace: {error}");
                }
            })
            .await;
        }
    }
}
