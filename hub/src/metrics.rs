//! The hub's Prometheus metrics: RPC counts and latency by method and code, connected spokes, ingested messages, commands issued and delivered.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::link::LinkCounters;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: String,
    pub code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// All metrics of one hub process.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    rpc_calls: Family<RpcLabels, Counter>,
    rpc_latency: HistogramFamily,
    /// Calls refused with RESOURCE_EXHAUSTED by the concurrency limit.
    pub rpc_shed: Counter,
    pub connected_spokes: Gauge,
    pub commands_issued: Counter,
    /// 1 while this replica evaluates the hub's application sets.
    pub appsets_leader: Gauge,
}

impl Metrics {
    /// Registers the hub's metrics, including the link's counters.
    pub fn new(link: &LinkCounters) -> Self {
        let mut registry = Registry::with_prefix("edgecd_hub");
        let rpc_calls = Family::<RpcLabels, Counter>::default();
        let rpc_latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let rpc_shed = Counter::default();
        let connected_spokes = Gauge::default();
        let commands_issued = Counter::default();
        let appsets_leader = Gauge::default();
        registry.register(
            "appsets_leader",
            "1 while this replica is the one evaluating the hub's application sets (leader among the replicas sharing the store)",
            appsets_leader.clone(),
        );
        registry.register(
            "rpc_calls",
            "HubService calls by method and gRPC code",
            rpc_calls.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "HubService call latency by method",
            rpc_latency.clone(),
        );
        registry.register(
            "rpc_shed",
            "Calls refused with RESOURCE_EXHAUSTED because the hub was at its concurrency limit",
            rpc_shed.clone(),
        );
        registry.register(
            "connected_spokes",
            "Spoke streams held by this replica",
            connected_spokes.clone(),
        );
        registry.register(
            "ingested_messages",
            "Spoke status messages stored",
            link.ingested.clone(),
        );
        registry.register(
            "status_reports_written",
            "Application status reports stored (newer than the stored status; superseded reports merged away are not counted)",
            link.status_reports.clone(),
        );
        registry.register(
            "edge_apps_refused",
            "Reports of edge-created apps refused: their project does not exist, does not allow the reporting cluster, or their owner is not of that cluster",
            link.edge_apps_refused.clone(),
        );
        registry.register(
            "spoke_handshakes_deferred",
            "New spoke streams refused with retry-after because too many handshakes ran at once (a reconnect storm)",
            link.handshakes_deferred.clone(),
        );
        registry.register(
            "spoke_session_store_retries",
            "Store calls of spoke sessions tried again after a transient database error instead of ending the stream",
            link.store_retries.clone(),
        );
        registry.register(
            "spoke_status_groups",
            "Groups of spoke status batches stored together in one transaction by the replica's writers (with ingested_messages, the mean group size)",
            link.status_groups.clone(),
        );
        registry.register(
            "spoke_heartbeat_writes",
            "Statements that recorded the heartbeats of this replica's spokes together (about one a second)",
            link.heartbeat_writes.clone(),
        );
        registry.register(
            "commands_issued",
            "Commands enqueued through the API",
            commands_issued.clone(),
        );
        registry.register(
            "commands_delivered",
            "Commands acknowledged by spokes connected to this replica",
            link.commands_delivered.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            rpc_calls,
            rpc_latency,
            rpc_shed,
            connected_spokes,
            commands_issued,
            appsets_leader,
        }
    }

    /// Records one finished RPC.
    pub fn observe_rpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        self.rpc_calls
            .get_or_create(&RpcLabels {
                method: method.to_owned(),
                code: code_name(code).to_owned(),
            })
            .inc();
        self.rpc_latency
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The canonical upper-snake name of a gRPC code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
