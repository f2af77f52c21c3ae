//! JSON log lines that carry the trace and span id of the span they were written in, so a log search and a trace view meet.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// tracing-subscriber's JSON format (event fields flattened to the top level), plus `trace_id` and
/// `span_id` when the event happens inside a span that OpenTelemetry traces.
#[derive(Debug)]
pub(crate) struct JsonWithTraceIds {
    inner: Format<Json>,
}

impl JsonWithTraceIds {
    pub(crate) fn new() -> Self {
        Self {
            inner: tracing_subscriber::fmt::format().json().flatten_event(true),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The OpenTelemetry layer makes the entered span's context current on this thread.
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end();
        match body.strip_suffix('}') {
            Some(open) => writeln!(
                writer,
                "{open},\"trace_id\":\"{}\",\"span_id\":\"{}\"}}",
                ids.trace_id(),
                ids.span_id()
            ),
            None => writer.write_str(&line),
        }
    }
}
