//! W3C trace context (`traceparent`, `tracestate`) in and out of `tracing` spans, gRPC metadata and stored records, validated and bounded as the hostile input it is.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The `traceparent` header's name (gRPC metadata keys are lower case).
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header's name.
pub const TRACESTATE: &str = "tracestate";
/// W3C caps `tracestate` at 32 members; 512 bytes is what a receiver must at least accept, and all we keep.
const MAX_TRACESTATE: usize = 512;

/// A span's W3C trace context as it travels between processes: over gRPC metadata, in a stored command,
/// in a stream message, in an Application's operation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceContext {
    /// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
    pub traceparent: String,
    /// Vendor state; empty when none.
    pub tracestate: String,
}

impl TraceContext {
    /// Parses and normalises a received context; `None` when `traceparent` is not a valid W3C header
    /// (wrong length or version, all-zero ids, non-hex). An over-long `tracestate` is dropped, not the
    /// trace.
    pub fn parse(traceparent: &str, tracestate: &str) -> Option<Self> {
        // A valid version-00 header is exactly 55 bytes; future versions may append fields.
        if !well_formed(traceparent) {
            return None;
        }
        let mut carrier = HashMap::with_capacity(2);
        carrier.insert(TRACEPARENT.to_owned(), traceparent.to_owned());
        if !tracestate.is_empty() && tracestate.len() <= MAX_TRACESTATE {
            carrier.insert(TRACESTATE.to_owned(), tracestate.to_owned());
        }
        let cx = TraceContextPropagator::new().extract(&carrier);
        Self::of(&cx)
    }

    /// The context of an OpenTelemetry context's span, if it is valid.
    pub fn of(cx: &opentelemetry::Context) -> Option<Self> {
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let mut carrier: HashMap<String, String> = HashMap::with_capacity(2);
        TraceContextPropagator::new().inject_context(cx, &mut carrier);
        let traceparent = carrier.remove(TRACEPARENT)?;
        let tracestate = carrier
            .remove(TRACESTATE)
            .filter(|s| s.len() <= MAX_TRACESTATE)
            .unwrap_or_default();
        Some(Self {
            traceparent,
            tracestate,
        })
    }

    /// The trace id, 32 lower-case hex digits.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }

    /// The parent span's id, 16 lower-case hex digits.
    pub fn span_id(&self) -> &str {
        self.traceparent.get(36..52).unwrap_or_default()
    }

    /// Whether the sender sampled the trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.traceparent
            .get(53..55)
            .and_then(|f| u8::from_str_radix(f, 16).ok())
            .is_some_and(|f| f & 1 == 1)
    }

    /// The OpenTelemetry context to parent a span on.
    pub fn to_context(&self) -> opentelemetry::Context {
        let mut carrier = HashMap::with_capacity(2);
        carrier.insert(TRACEPARENT.to_owned(), self.traceparent.clone());
        if !self.tracestate.is_empty() {
            carrier.insert(TRACESTATE.to_owned(), self.tracestate.clone());
        }
        TraceContextPropagator::new().extract(&carrier)
    }

    /// Reads `traceparent` / `tracestate` from gRPC request metadata.
    pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Option<Self> {
        let get = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        Self::parse(get(TRACEPARENT), get(TRACESTATE))
    }

    /// Writes `traceparent` / `tracestate` into gRPC request metadata.
    pub fn inject(&self, metadata: &mut tonic::metadata::MetadataMap) {
        if let Ok(value) = self.traceparent.parse() {
            metadata.insert(TRACEPARENT, value);
        }
        if !self.tracestate.is_empty()
            && let Ok(value) = self.tracestate.parse()
        {
            metadata.insert(TRACESTATE, value);
        }
    }
}

/// W3C's `traceparent` grammar, checked strictly (the propagator pads short ids): `version-trace_id-parent_id-flags`
/// in lower-case hex with the exact lengths; version `ff` is invalid; a later version may append `-…` fields.
fn well_formed(header: &str) -> bool {
    let bytes = header.as_bytes();
    if bytes.len() < 55 || bytes.len() > 256 {
        return false;
    }
    let hex = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let dashes = bytes[2] == b'-' && bytes[35] == b'-' && bytes[52] == b'-';
    let version_ok = hex(0..2) && &bytes[0..2] != b"ff";
    let tail_ok = match &bytes[0..2] {
        b"00" => bytes.len() == 55,
        _ => bytes.len() == 55 || bytes[55] == b'-',
    };
    dashes && version_ok && hex(3..35) && hex(36..52) && hex(53..55) && tail_ok
}

/// The trace context of `span`, when tracing is on and the span is part of a valid trace.
pub fn context_of(span: &tracing::Span) -> Option<TraceContext> {
    TraceContext::of(&span.context())
}

/// The trace context of the current span.
pub fn current() -> Option<TraceContext> {
    context_of(&tracing::Span::current())
}

/// Makes `parent` the parent of `span`, which must not have been entered yet. Returns whether it took
/// (false when tracing is off or `span` is disabled).
pub fn set_parent(span: &tracing::Span, parent: &TraceContext) -> bool {
    span.set_parent(parent.to_context()).is_ok()
}

/// Links `span` to the span of `other` (a related trace that is not its parent: the operator's action
/// behind the automated reconcile that reports it, for instance).
pub fn add_link(span: &tracing::Span, other: &TraceContext) {
    let cx = other.to_context();
    span.add_link(cx.span().span_context().clone());
}

/// The context to pass on from `span`: its own when tracing is on here, else the `received` one unchanged,
/// so that a process that does not export still joins its caller's trace to its callee's.
pub fn pass_on(span: &tracing::Span, received: Option<&TraceContext>) -> Option<TraceContext> {
    context_of(span).or_else(|| received.cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_parses_and_keeps_its_ids() {
        let cx = TraceContext::parse(VALID, "vendor=1").expect("valid");
        assert_eq!(cx.traceparent, VALID);
        assert_eq!(cx.tracestate, "vendor=1");
        assert_eq!(cx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(cx.span_id(), "00f067aa0ba902b7");
        assert!(cx.sampled());
        let unsampled = TraceContext::parse(&VALID.replace("-01", "-00"), "").expect("valid");
        assert!(!unsampled.sampled());
    }

    #[test]
    fn hostile_headers_are_refused_not_trusted() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n",
            "00-XYZ92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad, ""), None, "{bad:?}");
        }
        let long = format!("{VALID}-{}", "a".repeat(300));
        assert_eq!(TraceContext::parse(&long, ""), None);
        // An over-long tracestate is dropped; the trace itself is kept.
        let cx = TraceContext::parse(VALID, &"k=v,".repeat(200)).expect("valid parent");
        assert_eq!(cx.tracestate, "");
    }

    #[test]
    fn metadata_round_trip() {
        let cx = TraceContext::parse(VALID, "a=b").expect("valid");
        let mut metadata = tonic::metadata::MetadataMap::new();
        cx.inject(&mut metadata);
        assert_eq!(TraceContext::from_metadata(&metadata), Some(cx));
        assert_eq!(
            TraceContext::from_metadata(&tonic::metadata::MetadataMap::new()),
            None
        );
    }

    #[test]
    fn without_the_layer_a_span_passes_on_what_it_received() {
        let span = tracing::info_span!("no-subscriber");
        assert_eq!(context_of(&span), None);
        assert!(!set_parent(
            &span,
            &TraceContext::parse(VALID, "").expect("valid")
        ));
        let received = TraceContext::parse(VALID, "").expect("valid");
        assert_eq!(pass_on(&span, Some(&received)), Some(received));
        assert_eq!(pass_on(&span, None), None);
    }
}
