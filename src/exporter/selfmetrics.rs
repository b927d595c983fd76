//! lookout's own metrics: build info, config reloads, and per-collector health.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::family::{Family, labels};
use super::host::CollectorStat;

/// Metrics that describe lookout itself.
#[derive(Debug)]
pub struct SelfMetrics {
    reload_ok: Gauge,
    reload_success_time: Gauge<f64, AtomicU64>,
}

impl SelfMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let build = Info::new(vec![
            ("version", env!("CARGO_PKG_VERSION")),
            ("target_os", std::env::consts::OS),
            ("target_arch", std::env::consts::ARCH),
        ]);
        registry.register(
            "lookout_build",
            "A metric with a constant '1' value labeled by the version and target of lookout",
            build,
        );
        let reload_ok = Gauge::default();
        registry.register(
            "lookout_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            reload_ok.clone(),
        );
        let reload_success_time = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "lookout_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload",
            reload_success_time.clone(),
        );
        let metrics = Self {
            reload_ok,
            reload_success_time,
        };
        metrics.config_loaded(true);
        metrics
    }

    /// Records the outcome of a configuration (re)load.
    pub fn config_loaded(&self, ok: bool) {
        self.reload_ok.set(i64::from(ok));
        if ok {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            self.reload_success_time.set(now);
        }
    }
}

/// `lookout_collector_{success,duration_seconds}{collector}` for one host collection.
pub fn collector_families(stats: &[CollectorStat]) -> [Family; 2] {
    let mut success = Family::gauge(
        "lookout_collector_success",
        "Whether the host collector succeeded on its last run",
    );
    let mut duration = Family::gauge(
        "lookout_collector_duration_seconds",
        "How long the host collector took on its last run",
    );
    for stat in stats {
        success.push(
            labels([("collector", stat.name)]),
            f64::from(u8::from(stat.success)),
        );
        duration.push(
            labels([("collector", stat.name)]),
            stat.duration.as_secs_f64(),
        );
    }
    [success, duration]
}
