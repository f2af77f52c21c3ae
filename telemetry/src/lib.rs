//! Logs and traces for every edgecd binary: one `tracing` subscriber with text or JSON logs, an optional OpenTelemetry layer exporting spans over OTLP/gRPC, and W3C trace-context propagation.
//!
//! Tracing is off unless an OTLP endpoint is configured (the `--otlp-endpoint` flag, or the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`); then no OpenTelemetry layer is
//! installed at all, so spans cost what they cost without it. The rest follows the OpenTelemetry
//! environment variables: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` (default: `parentbased_always_on`), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_CERTIFICATE` (a CA for an `https://` collector),
//! `OTEL_SDK_DISABLED` and `OTEL_TRACES_EXPORTER=none`. docs/observability.md lists the spans.

mod json;
pub mod propagation;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use propagation::TraceContext;

/// What went wrong setting telemetry up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A log or trace filter does not parse.
    #[error("invalid {what} filter {filter:?}: {reason}")]
    Filter {
        what: &'static str,
        filter: String,
        reason: String,
    },
    /// The OTLP exporter could not be built (a bad endpoint, an unreadable CA file, …).
    #[error("OTLP trace exporter: {0}")]
    Exporter(String),
    /// A global subscriber was installed already.
    #[error("installing the tracing subscriber: {0}")]
    Install(String),
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line, with `trace_id` and `span_id` when the line belongs to a traced span.
    Json,
}

/// What a binary asks of [`init`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `service.name` unless `OTEL_SERVICE_NAME` (or `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
    pub service_name: &'static str,
    /// Which events are logged (tracing-subscriber's `EnvFilter` syntax).
    pub log_filter: String,
    pub log_format: LogFormat,
    pub trace: TraceArgs,
}

/// The tracing flags the hub and the spoke share.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// Export traces over OTLP/gRPC to this collector, e.g. http://otel-collector:4317. Without it the
    /// standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT apply; neither set: off.
    #[arg(long, env = "EDGECD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Which spans are exported (tracing-subscriber filter syntax), independent of the log filter.
    #[arg(long, env = "EDGECD_TRACE_FILTER", default_value = DEFAULT_TRACE_FILTER)]
    pub trace_filter: String,
}

/// The spans exported by default: edgecd's own at `info` and above, nothing from libraries (their spans
/// would add noise and, for the exporter's own gRPC client, feedback).
pub const DEFAULT_TRACE_FILTER: &str = "warn,edgecd=info,edgecd_hub=info,edgecd_spoke=info,edgecd_git=info,edgecd_render=info,edgecd_helm=info";

/// Where spans go once [`init`] has run; flush with [`Telemetry::shutdown`] before the process exits.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn tracing_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still buffered and stops the exporter (at most `timeout`). Blocking: call it from
    /// a thread that is not driving the async runtime (`tokio::task::spawn_blocking`), since the exporter's
    /// connection lives on that runtime.
    pub fn shutdown(&self, timeout: Duration) {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.shutdown_with_timeout(timeout)
        {
            eprintln!("edgecd: flushing traces: {error}");
        }
    }

    /// [`Telemetry::shutdown`] from async code (on a blocking thread, so the runtime keeps driving the
    /// exporter's connection meanwhile).
    pub async fn shutdown_async(self, timeout: Duration) {
        if self.provider.is_some() {
            let _ = tokio::task::spawn_blocking(move || self.shutdown(timeout)).await;
        }
    }
}

/// Installs the process's global subscriber: logs to stderr, and spans to the OTLP endpoint when one is
/// configured. Call it inside the Tokio runtime (the exporter's gRPC connection is spawned on it).
pub fn init(settings: &Settings) -> Result<Telemetry, Error> {
    let log_filter = filter("log", &settings.log_filter)?;
    let endpoint = settings.trace.otlp_endpoint.as_deref();
    let provider = if tracing_configured(endpoint) {
        Some(provider(settings.service_name, endpoint)?)
    } else {
        None
    };
    let log_layer = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonWithTraceIds::new())
            .with_filter(log_filter)
            .boxed(),
    };
    let trace_layer = match &provider {
        Some(provider) => Some(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("edgecd"))
                .with_filter(filter("trace", &settings.trace.trace_filter)?),
        ),
        None => None,
    };
    tracing_subscriber::registry()
        .with(log_layer)
        .with(trace_layer)
        .try_init()
        .map_err(|e| Error::Install(e.to_string()))?;
    Ok(Telemetry { provider })
}

/// A tracer provider for a process that creates its spans through the OpenTelemetry API directly (the
/// CLI): exporting when an endpoint is configured, otherwise only minting ids so that the trace it starts
/// still continues at the hub and the spokes.
pub fn provider_without_subscriber(
    service_name: &'static str,
    otlp_endpoint: Option<&str>,
) -> Result<(SdkTracerProvider, bool), Error> {
    if tracing_configured(otlp_endpoint) {
        Ok((provider(service_name, otlp_endpoint)?, true))
    } else {
        Ok((
            SdkTracerProvider::builder()
                .with_resource(resource(service_name))
                .build(),
            false,
        ))
    }
}

/// Whether spans should be exported: an endpoint from a flag or the environment, and the SDK not disabled.
pub fn tracing_configured(flag: Option<&str>) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
    !disabled
        && (flag.is_some_and(|f| !f.trim().is_empty())
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// An exporting provider: to `otlp_endpoint`, else where the OpenTelemetry environment says.
fn provider(
    service_name: &'static str,
    otlp_endpoint: Option<&str>,
) -> Result<SdkTracerProvider, Error> {
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(endpoint) = otlp_endpoint.filter(|e| !e.trim().is_empty()) {
        builder = builder.with_endpoint(endpoint.trim());
    }
    if let Ok(path) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_CERTIFICATE"))
    {
        let pem = std::fs::read_to_string(&path).map_err(|e| {
            Error::Exporter(format!(
                "reading the collector's CA certificate {path}: {e}"
            ))
        })?;
        builder = builder.with_tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
        );
    }
    let exporter = builder
        .build()
        .map_err(|e| Error::Exporter(e.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service_name))
        .build())
}

/// The process's resource: the SDK's detectors (which read `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`), with `service_name` only where they name no service.
fn resource(service_name: &'static str) -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if named {
        builder.build()
    } else {
        builder.with_service_name(service_name).build()
    }
}

fn filter(what: &'static str, text: &str) -> Result<tracing_subscriber::EnvFilter, Error> {
    tracing_subscriber::EnvFilter::try_new(text).map_err(|e| Error::Filter {
        what,
        filter: text.to_owned(),
        reason: e.to_string(),
    })
}
