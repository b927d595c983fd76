//! The exporter: everything `/metrics` serves.
//!
//! A scrape never collects anything itself when a fresh enough exposition exists: the
//! encoded body (per format and encoding) is cached for `host.max_age` (1 s by default),
//! so a flood of scrapers costs one collection per second, and each scrape is a cache
//! lookup and a copy of reference-counted bytes. When the cache is stale, one scrape
//! refreshes it while concurrent ones wait for that same refresh (single flight).
//!
//! A body is two parts: the SQL business series, encoded once per snapshot straight
//! from the series tables ([`encode`], cached by [`sql::SqlExporter::segment`]), and
//! the registry (relay, lookout's own, host, process and SQL health metrics), encoded
//! per refresh. With gzip each part is compressed on its own and the parts are joined
//! into one gzip stream ([`gzip`]), so a refresh never recompresses a large result.
//! SQL results are snapshots kept up to date in the background ([`sql`]).
//!
//! The exporter does not know the relay: the registry it serves is handed in by
//! `state::AppState::new` with the relay's metrics already registered.

pub mod body;
pub mod encode;
pub mod exposition;
pub mod family;
pub mod gzip;
pub mod host;
pub mod packs;
pub mod process;
pub mod selfmetrics;
pub mod sql;

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

pub use body::Exposition;
pub use exposition::Format;
use family::Family;
use host::{HostCollector, HostSettings};
use selfmetrics::SelfMetrics;

use crate::config::Config;

/// Errors while building an exposition.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("encoding metrics: {0}")]
    Encode(#[from] std::fmt::Error),
    #[error("compressing metrics: {0}")]
    Compress(#[from] std::io::Error),
    #[error("encoding SQL metrics stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A swappable list of families that the registry encodes as they are at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot(ArcSwap<Vec<Family>>);

impl Snapshot {
    pub fn replace(&self, families: Vec<Family>) {
        self.0.store(Arc::new(families));
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for family in self.0.load().iter() {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

/// The process metrics, read when the exposition is built.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for family in process::collect() {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Cached {
    built: Instant,
    body: Exposition,
}

/// Serves `/metrics`.
#[derive(Debug)]
pub struct Exporter {
    registry: Registry,
    host: ArcSwapOption<HostCollector>,
    host_families: Arc<Snapshot>,
    sql: Arc<sql::SqlExporter>,
    host_collected: std::sync::Mutex<Option<Instant>>,
    max_age: ArcSwap<Duration>,
    /// Indexed by [`slot`].
    cache: [ArcSwapOption<Cached>; 4],
    refresh: tokio::sync::Mutex<()>,
    self_metrics: SelfMetrics,
}

fn slot(format: Format, gzip: bool) -> usize {
    match (format, gzip) {
        (Format::Text, false) => 0,
        (Format::Text, true) => 1,
        (Format::OpenMetrics, false) => 2,
        (Format::OpenMetrics, true) => 3,
    }
}

impl Exporter {
    /// Serves `registry`, which holds what the rest of lookout registered (the relay's
    /// metrics), after adding lookout's own, host, process and SQL metrics to it.
    pub fn new(config: &Config, mut registry: Registry) -> Self {
        let self_metrics = SelfMetrics::register(&mut registry);
        let host_families = Arc::new(Snapshot::default());
        registry.register_collector(Box::new(Arc::clone(&host_families)));
        registry.register_collector(Box::new(ProcessCollector));
        let sql = Arc::new(sql::SqlExporter::default());
        registry.register_collector(Box::new(Arc::clone(&sql)));
        let exporter = Self {
            registry,
            host: ArcSwapOption::empty(),
            host_families,
            sql,
            host_collected: std::sync::Mutex::new(None),
            max_age: ArcSwap::from_pointee(config.host.max_age),
            cache: Default::default(),
            refresh: tokio::sync::Mutex::new(()),
            self_metrics,
        };
        exporter.apply(config);
        exporter
    }

    pub fn self_metrics(&self) -> &SelfMetrics {
        &self.self_metrics
    }

    pub fn sql(&self) -> &sql::SqlExporter {
        &self.sql
    }

    /// Takes the exporter settings of a (re)loaded configuration.
    pub fn apply(&self, config: &Config) {
        let settings = HostSettings {
            mount_points_exclude: config.host.mount_points_exclude.clone(),
            fs_types_exclude: config.host.fs_types_exclude.clone(),
            mount_timeout: config.host.mount_timeout,
            collectors: config.host.collectors,
            textfile_directory: config.host.textfile_directory.clone(),
            paths: config.host.paths.clone(),
        };
        // Keep the running collector (and its stuck-mount set) if nothing changed.
        let host = config.host.enabled.then(|| match self.host.load_full() {
            Some(current) if current.settings().same_as(&settings) => current,
            _ => Arc::new(HostCollector::new(settings)),
        });
        if host.is_none() {
            self.host_families.replace(Vec::new());
        }
        self.host.store(host);
        if let Ok(mut at) = self.host_collected.lock() {
            *at = None;
        }
        self.sql.apply(config);
        self.max_age.store(Arc::new(config.host.max_age));
        self.invalidate();
    }

    /// Drops cached expositions so the next scrape rebuilds.
    pub fn invalidate(&self) {
        for slot in &self.cache {
            slot.store(None);
        }
    }

    /// The exposition body in `format`, gzip-compressed if asked.
    pub async fn scrape(&self, format: Format, gzip: bool) -> Result<Exposition, Error> {
        let slot = &self.cache[slot(format, gzip)];
        let max_age = **self.max_age.load();
        if let Some(cached) = slot.load_full().filter(|c| c.built.elapsed() < max_age) {
            return Ok(cached.body.clone());
        }
        let _refreshing = self.refresh.lock().await;
        // Another scrape may have refreshed while this one waited.
        if let Some(cached) = slot.load_full().filter(|c| c.built.elapsed() < max_age) {
            return Ok(cached.body.clone());
        }
        self.refresh_host(max_age).await;
        let body = self.encode(format, gzip).await?;
        slot.store(Some(Arc::new(Cached {
            built: Instant::now(),
            body: body.clone(),
        })));
        Ok(body)
    }

    /// Collects host metrics unless the last collection is younger than `max_age`.
    async fn refresh_host(&self, max_age: Duration) {
        let Some(host) = self.host.load_full() else {
            return;
        };
        let last = self.host_collected.lock().ok().and_then(|at| *at);
        if last.is_some_and(|at| at.elapsed() < max_age) {
            return;
        }
        match tokio::task::spawn_blocking(move || host.collect()).await {
            Ok(report) => {
                let mut families = report.families;
                families.extend(selfmetrics::collector_families(&report.collectors));
                self.host_families.replace(families);
                if let Ok(mut at) = self.host_collected.lock() {
                    *at = Some(Instant::now());
                }
            }
            Err(error) => tracing::error!(%error, "host collection panicked"),
        }
    }

    async fn encode(&self, format: Format, gzip: bool) -> Result<Exposition, Error> {
        let sql = Arc::clone(&self.sql);
        let segment = tokio::task::spawn_blocking(move || sql.segment(format, gzip)).await??;
        let mut openmetrics = String::with_capacity(64 * 1024);
        prometheus_client::encoding::text::encode_registry(&mut openmetrics, &self.registry)?;
        let mut text = match format {
            Format::OpenMetrics => openmetrics.into_bytes(),
            Format::Text => exposition::openmetrics_to_text(&openmetrics).into_bytes(),
        };
        self.sql.write_packs(&mut text, format)?;
        if format == Format::OpenMetrics {
            text.extend_from_slice(b"# EOF\n");
        }
        if !gzip {
            return Ok(Exposition::new(vec![
                segment.part.bytes.clone(),
                Bytes::from(text),
            ]));
        }
        let mut registry = gzip::PartWriter::default();
        registry.write_all(&text)?;
        let registry = registry.last()?;
        Ok(Exposition::new(gzip::member(&[&segment.part, &registry])))
    }
}
