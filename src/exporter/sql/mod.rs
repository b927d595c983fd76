//! Business metrics computed by SQL, refreshed in the background.
//!
//! Each query runs on its own interval in its own task ([`query`]); its result becomes a
//! snapshot, a compact series table ([`rows`], [`series`]) that a scrape only reads.
//! The tables are encoded into a cached segment of the exposition ([`Segments`]) once
//! per snapshot, not once per scrape; the health families (`lookout_query_*`,
//! `lookout_database_*`) go through the registry like every other lookout metric. Databases are small bounded
//! pools with reconnect backoff ([`database`]); backends are MySQL/MariaDB, PostgreSQL and
//! SQLite. A reload keeps the pools and snapshots of unchanged databases and queries.

pub mod database;
pub mod history;
pub mod mysql;
pub mod postgres;
pub mod query;
pub mod rows;
pub mod series;
pub mod sqlite;
pub(crate) mod tls;
pub mod value;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use tokio::task::JoinSet;

use super::Format;
use super::family::{Family, labels};
use super::gzip::{Part, PartWriter};
use crate::config::Config;
use database::DatabaseHandle;
use query::{QueryState, Snapshot};

use super::packs::{self, PackState};

/// Why a query produced no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("database configuration: {0}")]
    Config(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("database unreachable; next connection attempt in {0:.1?}")]
    BackingOff(Duration),
    #[error("query failed: {0}")]
    Query(String),
    #[error("query timed out after {0:?}")]
    Timeout(Duration),
    /// Every pooled connection stayed busy with other queries: the database is fine, the
    /// pool is too small for the queries' overlap (raise `max_connections`).
    #[error(
        "no free connection within {0:?}: all max_connections are in use by other queries of this database"
    )]
    Busy(Duration),
}

#[derive(Debug, Default)]
struct Running {
    databases: BTreeMap<String, Arc<DatabaseHandle>>,
    queries: Vec<Arc<QueryState>>,
    packs: Vec<Arc<PackState>>,
    tasks: JoinSet<()>,
}

/// The encoded business series of the fresh snapshots, one per (format, gzip).
#[derive(Debug)]
pub struct Segment {
    /// Ids of the snapshots it was encoded from, in query order.
    key: Vec<u64>,
    /// Plain text, or (gzip) a deflate part that more parts follow.
    pub part: Part,
}

/// Encoded segments by [`Segments::slot`]: rebuilt only when a snapshot changed or went
/// stale, and only for a format someone scrapes.
#[derive(Debug, Default)]
struct Segments([Option<Arc<Segment>>; 4]);

impl Segments {
    fn slot(format: Format, gzip: bool) -> usize {
        usize::from(format == Format::OpenMetrics) * 2 + usize::from(gzip)
    }
}

/// All configured queries and their databases.
#[derive(Debug, Default)]
pub struct SqlExporter {
    running: Mutex<Running>,
    segments: Mutex<Segments>,
}

impl SqlExporter {
    /// Starts (or, on reload, restarts what changed of) the configured queries.
    /// Must be called inside a tokio runtime.
    pub fn apply(&self, config: &Config) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let old = std::mem::take(&mut *running);
        let Running {
            databases: mut old_dbs,
            queries: old_queries,
            packs: old_packs,
            mut tasks,
        } = old;
        tasks.abort_all();

        let mut databases = BTreeMap::new();
        for (name, db) in &config.databases {
            let handle = match old_dbs.remove(name) {
                Some(handle) if handle.config == *db => handle,
                _ => Arc::new(DatabaseHandle::new(name, db)),
            };
            databases.insert(name.clone(), handle);
        }
        for (_, stale) in old_dbs {
            if let Some(handle) = Arc::into_inner(stale) {
                tokio::spawn(handle.close());
            }
        }

        let mut queries = Vec::new();
        let mut tasks = JoinSet::new();
        for q in &config.queries {
            let Some(db) = databases.get(&q.database) else {
                continue;
            };
            let state = old_queries
                .iter()
                .find(|old| old.query == *q)
                .map_or_else(|| Arc::new(QueryState::new(q.clone())), Arc::clone);
            tasks.spawn(Arc::clone(&state).schedule(Arc::clone(db)));
            queries.push(state);
        }
        let mut packs = Vec::new();
        for (name, handle) in &databases {
            for &pack in &handle.config.collect {
                let interval = handle.config.collect_interval;
                let state = old_packs
                    .iter()
                    .find(|old| {
                        old.pack == pack && old.database == *name && old.interval() == interval
                    })
                    .map_or_else(
                        || Arc::new(PackState::new(pack, name, interval)),
                        Arc::clone,
                    );
                tasks.spawn(Arc::clone(&state).schedule(Arc::clone(handle)));
                packs.push(state);
            }
        }
        *running = Running {
            databases,
            queries,
            packs,
            tasks,
        };
    }

    /// Runs one configured query once, outside any schedule (`lookout query`).
    pub async fn run_now(config: &Config, name: &str) -> Result<Vec<Family>, Error> {
        let query = config
            .queries
            .iter()
            .find(|q| q.name == name)
            .ok_or_else(|| Error::Config(format!("no query named `{name}`")))?;
        let db = config
            .databases
            .get(&query.database)
            .ok_or_else(|| Error::Config(format!("no database named `{}`", query.database)))?;
        let handle = DatabaseHandle::new(&query.database, db);
        let result = handle.run(query).await;
        handle.close().await;
        result.map(|c| c.families())
    }

    /// Each query's latest health, for the status page.
    pub fn status(&self) -> Vec<(crate::config::Query, query::Stats, Vec<history::Track>)> {
        self.running
            .lock()
            .map(|r| {
                r.queries
                    .iter()
                    .map(|q| {
                        let tracks = q.history.lock().map(|h| h.tracks()).unwrap_or_default();
                        (q.query.clone(), q.stats(), tracks)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The largest current value of `metric` across its series, if a fresh snapshot has it.
    pub fn latest(&self, metric: &str) -> Option<f64> {
        self.fresh()
            .iter()
            .flat_map(|snapshot| snapshot.table.families.iter())
            .filter(|family| family.name == metric)
            .flat_map(|family| family.samples().map(|(_, value)| value))
            .reduce(f64::max)
    }

    /// The snapshots to expose now, in query order.
    fn fresh(&self) -> Vec<Arc<Snapshot>> {
        self.running
            .lock()
            .map(|running| running.queries.iter().filter_map(|q| q.fresh()).collect())
            .unwrap_or_default()
    }

    /// The business series of the fresh snapshots in `format`, compressed if `gzip`:
    /// the cached segment while the same snapshots are fresh, else a new one. Encoding a
    /// large result takes a while: call it off the async workers (`spawn_blocking`).
    pub fn segment(&self, format: Format, gzip: bool) -> std::io::Result<Arc<Segment>> {
        let fresh = self.fresh();
        let key: Vec<u64> = fresh.iter().map(|snapshot| snapshot.id).collect();
        let mut segments = self
            .segments
            .lock()
            .map_err(|_| std::io::Error::other("segment cache poisoned"))?;
        let slot = &mut segments.0[Segments::slot(format, gzip)];
        if let Some(segment) = slot.as_ref().filter(|s| s.key == key) {
            return Ok(Arc::clone(segment));
        }
        // Drop the old segment before building the new one: peak memory is one segment.
        *slot = None;
        let tables: Vec<&series::SeriesTable> = fresh.iter().map(|s| &s.table).collect();
        let part = if gzip {
            let mut writer = BufWriter::with_capacity(64 * 1024, PartWriter::default());
            super::encode::write_tables(&mut writer, format, &tables)?;
            writer.into_inner().map_err(|e| e.into_error())?.middle()?
        } else {
            let mut text = Vec::new();
            super::encode::write_tables(&mut text, format, &tables)?;
            text.flush()?;
            Part {
                bytes: Bytes::from(text),
                crc: flate2::Crc::default(),
            }
        };
        let segment = Arc::new(Segment { key, part });
        *slot = Some(Arc::clone(&segment));
        Ok(segment)
    }
}

impl SqlExporter {
    /// Writes the packs' families in `format`: by [`super::encode::write_families`], as
    /// postgres_exporter's counters without `_total` have no prometheus-client type.
    pub fn write_packs(&self, out: &mut Vec<u8>, format: Format) -> std::io::Result<()> {
        let packs = match self.running.lock() {
            Ok(running) => running.packs.clone(),
            Err(_) => return Ok(()),
        };
        if packs.is_empty() {
            return Ok(());
        }
        super::encode::write_families(out, format, &packs::families(&packs))
    }
}

fn health_families(running: &Running) -> Vec<Family> {
    let mut success = Family::gauge(
        "lookout_query_success",
        "Whether the query's last run succeeded",
    );
    let mut duration = Family::gauge(
        "lookout_query_duration_seconds",
        "How long the query's last run took",
    );
    let mut last = Family::gauge(
        "lookout_query_last_success_timestamp_seconds",
        "When the query last succeeded (Unix seconds)",
    );
    let mut runs = Family::counter("lookout_query_runs", "Times the query ran");
    let mut errors = Family::counter("lookout_query_errors", "Times the query failed");
    let mut series = Family::gauge(
        "lookout_query_series",
        "Series the query's last successful run produced",
    );
    let mut dropped = Family::counter(
        "lookout_series_dropped",
        "Series dropped: beyond max_series, where reading stops (cardinality), or repeating a label set (duplicate)",
    );
    for state in &running.queries {
        let name = state.query.name.as_str();
        let stats = state.stats();
        let q = || labels([("query", name)]);
        success.push(q(), f64::from(u8::from(stats.success)));
        duration.push(q(), stats.duration.as_secs_f64());
        if let Some(at) = stats.last_success_unix {
            last.push(q(), at);
        }
        runs.push(q(), stats.runs as f64);
        errors.push(q(), stats.errors as f64);
        series.push(
            q(),
            if state.fresh().is_some() {
                stats.series as f64
            } else {
                0.0
            },
        );
        dropped.push(
            labels([("query", name), ("reason", "cardinality")]),
            stats.dropped_cardinality as f64,
        );
        dropped.push(
            labels([("query", name), ("reason", "duplicate")]),
            stats.dropped_duplicate as f64,
        );
    }
    let mut up = Family::gauge(
        "lookout_database_up",
        "Whether the database answered the last connection attempt",
    );
    let mut conn_errors = Family::counter(
        "lookout_database_connection_errors",
        "Failed connection attempts to the database",
    );
    for (name, db) in &running.databases {
        up.push(
            labels([("database", name)]),
            f64::from(u8::from(db.is_up())),
        );
        conn_errors.push(labels([("database", name)]), db.connection_errors() as f64);
    }
    vec![
        success,
        duration,
        last,
        runs,
        errors,
        series,
        dropped,
        up,
        conn_errors,
    ]
}

/// The health families; the business series are in [`SqlExporter::segment`] and the
/// packs' families in [`SqlExporter::write_packs`].
impl Collector for SqlExporter {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Ok(running) = self.running.lock() else {
            return Ok(());
        };
        for family in health_families(&running) {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}
