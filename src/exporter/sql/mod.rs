//! Business metrics computed by SQL, refreshed in the background.
//!
//! Each query runs on its own interval in its own task ([`query`]); its result becomes a
//! snapshot of families ([`rows`]) that a scrape only reads. Databases are small bounded
//! pools with reconnect backoff ([`database`]); backends are MySQL/MariaDB, PostgreSQL and
//! SQLite. A reload keeps the pools and snapshots of unchanged databases and queries.

pub mod database;
pub mod history;
pub mod mysql;
pub mod postgres;
pub mod query;
pub mod rows;
pub mod sqlite;
mod tls;
pub mod value;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use tokio::task::JoinSet;

use super::family::{Family, Labels, Sample, labels};
use crate::config::Config;
use database::DatabaseHandle;
use query::QueryState;

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
    tasks: JoinSet<()>,
}

/// All configured queries and their databases.
#[derive(Debug, Default)]
pub struct SqlExporter {
    running: Mutex<Running>,
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
        *running = Running {
            databases,
            queries,
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
        result.map(|c| c.families)
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
        let running = self.running.lock().ok()?;
        running
            .queries
            .iter()
            .filter_map(|state| state.fresh())
            .flat_map(|snapshot| {
                snapshot
                    .families
                    .iter()
                    .filter(|f| f.name == metric)
                    .flat_map(|f| f.samples.iter().map(|s| s.value))
                    .collect::<Vec<_>>()
            })
            .reduce(f64::max)
    }

    fn families(&self) -> Vec<Family> {
        let Ok(running) = self.running.lock() else {
            return Vec::new();
        };
        let mut merged: BTreeMap<Cow<'static, str>, (Family, HashSet<Labels>)> = BTreeMap::new();
        for state in &running.queries {
            let Some(snapshot) = state.fresh() else {
                continue;
            };
            for family in &snapshot.families {
                let (into, seen) = merged.entry(family.name.clone()).or_insert_with(|| {
                    (
                        Family {
                            samples: Vec::new(),
                            ..family.clone()
                        },
                        HashSet::new(),
                    )
                });
                // Two queries may feed one metric; a label set both produce is kept once.
                for sample in &family.samples {
                    if seen.insert(sample.labels.clone()) {
                        into.samples.push(Sample {
                            labels: sample.labels.clone(),
                            value: sample.value,
                        });
                    }
                }
            }
        }
        let mut families: Vec<Family> = merged.into_values().map(|(f, _)| f).collect();
        families.extend(health_families(&running));
        families
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

impl Collector for SqlExporter {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for family in self.families() {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}
