//! The spoke's Prometheus metrics (`edgecd_spoke_*`): reconcile and sync counters fed by engine hooks, plus app, git and render-cache figures read from the engine at scrape time.

use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::OperationPhase;
use edgecd_core::{Health, SyncStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::git::GitCache;
use crate::reconcile::{Engine, ReconcileObserver};

/// Prefix of every metric of the spoke binary.
pub const PREFIX: &str = "edgecd_spoke";

type Labels = [(&'static str, &'static str); 1];

/// Counters and histograms updated by the engine's hooks.
#[derive(Debug)]
pub struct EngineMetrics {
    reconciles: Family<Labels, Counter>,
    reconcile_duration: Histogram,
    syncs: Family<Labels, Counter>,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            // 5 ms … ~41 s.
            reconcile_duration: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 14),
            ),
            syncs: Family::default(),
        }
    }
}

impl ReconcileObserver for EngineMetrics {
    fn reconciled(&self, ok: bool, duration: Duration) {
        let result = if ok { "success" } else { "error" };
        self.reconciles.get_or_create(&[("result", result)]).inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    fn synced(&self, phase: OperationPhase) {
        self.syncs
            .get_or_create(&[("phase", phase_label(phase))])
            .inc();
    }
}

fn phase_label(phase: OperationPhase) -> &'static str {
    match phase {
        OperationPhase::Running => "Running",
        OperationPhase::Succeeded => "Succeeded",
        OperationPhase::Failed => "Failed",
        OperationPhase::Error => "Error",
        OperationPhase::Terminating => "Terminating",
    }
}

/// Builds the registry of the spoke: the engine metrics (returned, to install
/// with [`Engine::set_observer`]) and a collector reading `engine` and `git`.
pub fn registry(engine: Arc<Engine>, git: GitCache) -> (Registry, Arc<EngineMetrics>) {
    let mut registry = Registry::with_prefix(PREFIX);
    let metrics = Arc::new(EngineMetrics::default());
    registry.register(
        "reconciles",
        "Reconciles of Applications, by result",
        metrics.reconciles.clone(),
    );
    registry.register_with_unit(
        "reconcile_duration",
        "Duration of one reconcile (git, render, compare, sync, status write)",
        prometheus_client::registry::Unit::Seconds,
        metrics.reconcile_duration.clone(),
    );
    registry.register(
        "sync_operations",
        "Sync operations run, by final phase",
        metrics.syncs.clone(),
    );
    registry.register_collector(Box::new(EngineCollector { engine, git }));
    (registry, metrics)
}

/// Reads app statuses, git and render-cache figures on each scrape.
struct EngineCollector {
    engine: Arc<Engine>,
    git: GitCache,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineCollector").finish_non_exhaustive()
    }
}

/// Apps by sync status and by health, counted from the controller's cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCounts {
    pub by_sync: [(SyncStatus, u64); 3],
    pub by_health: [(Health, u64); 6],
}

impl AppCounts {
    /// Counts `apps`; an app without status counts as Unknown.
    pub fn count<'a>(apps: impl IntoIterator<Item = &'a crate::crd::Application>) -> Self {
        let mut counts = Self {
            by_sync: [
                (SyncStatus::Synced, 0),
                (SyncStatus::OutOfSync, 0),
                (SyncStatus::Unknown, 0),
            ],
            by_health: Health::ALL.map(|h| (h, 0)),
        };
        for app in apps {
            let (sync, health) = app
                .status
                .as_ref()
                .map_or((SyncStatus::Unknown, Health::Unknown), |s| {
                    (s.sync.status, s.health.status)
                });
            if let Some(slot) = counts.by_sync.iter_mut().find(|(s, _)| *s == sync) {
                slot.1 += 1;
            }
            if let Some(slot) = counts.by_health.iter_mut().find(|(h, _)| *h == health) {
                slot.1 += 1;
            }
        }
        counts
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn to_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(store) = self.engine.apps() {
            let apps = store.state();
            let counts = AppCounts::count(apps.iter().map(AsRef::as_ref));
            let mut family = encoder.encode_descriptor(
                "apps_by_sync_status",
                "Applications by sync status",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (status, n) in counts.by_sync {
                ConstGauge::new(to_i64(n))
                    .encode(family.encode_family(&[("sync_status", status.as_str())])?)?;
            }
            let mut family = encoder.encode_descriptor(
                "apps_by_health",
                "Applications by health",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (health, n) in counts.by_health {
                ConstGauge::new(to_i64(n))
                    .encode(family.encode_family(&[("health", health.as_str())])?)?;
            }
        }
        let (full, reused) = self.engine.compare_counts();
        let mut family = encoder.encode_descriptor(
            "comparisons",
            "Comparisons of apps with their live objects: full (server-side dry runs) or reused (unchanged inputs)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (kind, n) in [("full", full), ("reused", reused)] {
            ConstCounter::new(n).encode(family.encode_family(&[("kind", kind)])?)?;
        }
        let git = self.git.metrics();
        counter(&mut encoder, "git_fetches", "Git fetches run", git.fetches)?;
        counter(
            &mut encoder,
            "git_fetch_failures",
            "Git fetches that failed",
            git.fetch_failures,
        )?;
        counter(
            &mut encoder,
            "git_fetch_dedup_hits",
            "Fetch requests served by a fetch already in flight",
            git.fetch_dedup_hits,
        )?;
        counter(
            &mut encoder,
            "git_received_bytes",
            "Bytes received by git fetches",
            git.received_bytes,
        )?;
        counter(
            &mut encoder,
            "git_ls_remotes",
            "Connections listing a remote's refs",
            git.ls_remotes,
        )?;
        counter(
            &mut encoder,
            "git_ls_remote_cache_hits",
            "Ref lookups answered from the recent listing",
            git.ls_remote_cache_hits,
        )?;
        counter(
            &mut encoder,
            "git_checkouts_written",
            "Checkouts written to disk",
            git.checkouts_written,
        )?;
        gauge(
            &mut encoder,
            "git_checkouts",
            "Checkouts currently on disk",
            to_i64(self.git.checkout_count()),
        )?;
        gauge(
            &mut encoder,
            "render_cache_entries",
            "Rendered sources held in the render cache",
            to_i64(self.engine.render_cache_len()),
        )?;
        Ok(())
    }
}

/// Encodes `registry` in the Prometheus text format.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use edgecd_core::app::{ApplicationSpec, ApplicationStatus};

    fn app(status: Option<(SyncStatus, Health)>) -> crate::crd::Application {
        let mut app = crate::crd::Application::new("a", "ns", ApplicationSpec::default());
        app.status = status.map(|(sync, health)| {
            let mut s = ApplicationStatus::default();
            s.sync.status = sync;
            s.health.status = health;
            s
        });
        app
    }

    #[test]
    fn apps_are_counted_by_sync_status_and_health() {
        let apps = [
            app(Some((SyncStatus::Synced, Health::Healthy))),
            app(Some((SyncStatus::Synced, Health::Degraded))),
            app(Some((SyncStatus::OutOfSync, Health::Healthy))),
            app(None),
        ];
        let counts = AppCounts::count(apps.iter());
        assert_eq!(
            counts.by_sync,
            [
                (SyncStatus::Synced, 2),
                (SyncStatus::OutOfSync, 1),
                (SyncStatus::Unknown, 1)
            ]
        );
        let healthy = counts
            .by_health
            .iter()
            .find(|(h, _)| *h == Health::Healthy)
            .unwrap();
        assert_eq!(healthy.1, 2);
        let unknown = counts
            .by_health
            .iter()
            .find(|(h, _)| *h == Health::Unknown)
            .unwrap();
        assert_eq!(unknown.1, 1);
    }

    #[test]
    fn hooks_feed_the_text_encoding() {
        let metrics = EngineMetrics::default();
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register("reconciles", "r", metrics.reconciles.clone());
        registry.register("sync_operations", "s", metrics.syncs.clone());
        metrics.reconciled(true, Duration::from_millis(3));
        metrics.reconciled(false, Duration::from_millis(3));
        metrics.reconciled(true, Duration::from_millis(3));
        metrics.synced(OperationPhase::Succeeded);
        let text = encode(&registry).unwrap();
        assert!(
            text.contains("edgecd_spoke_reconciles_total{result=\"success\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("edgecd_spoke_reconciles_total{result=\"error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("edgecd_spoke_sync_operations_total{phase=\"Succeeded\"} 1"),
            "{text}"
        );
    }
}
