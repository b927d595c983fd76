//! One configured query: its background schedule, its latest snapshot and its health.
//!
//! **Invariant:** a scrape never waits on SQL. The task below runs the query every
//! `interval` (after a random start delay) and swaps in a new snapshot; a scrape only
//! reads the snapshot, and hides it once it is older than `stale_after`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;

use super::database::DatabaseHandle;
use super::history::History;
use super::rows::Conversion;
use super::series::SeriesTable;
use crate::config::Query;

/// The series of the last successful run.
#[derive(Debug)]
pub struct Snapshot {
    /// Unique among all snapshots of the process: the exposition cache's key.
    pub id: u64,
    pub table: SeriesTable,
    pub taken: Instant,
}

impl Snapshot {
    pub fn new(table: SeriesTable) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            table,
            taken: Instant::now(),
        }
    }
}

/// Counters and gauges about one query.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub runs: u64,
    pub errors: u64,
    pub success: bool,
    pub duration: Duration,
    pub last_success_unix: Option<f64>,
    pub series: usize,
    pub dropped_cardinality: u64,
    pub dropped_duplicate: u64,
}

#[derive(Debug)]
pub struct QueryState {
    pub query: Query,
    pub snapshot: ArcSwapOption<Snapshot>,
    pub stats: Mutex<Stats>,
    /// The last hour of a few series, for the console.
    pub history: Mutex<History>,
}

impl QueryState {
    pub fn new(query: Query) -> Self {
        Self {
            query,
            snapshot: ArcSwapOption::empty(),
            stats: Mutex::new(Stats::default()),
            history: Mutex::new(History::default()),
        }
    }

    /// The series to expose now: none once the snapshot is older than `stale_after`.
    pub fn fresh(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .load_full()
            .filter(|s| s.taken.elapsed() < self.query.stale_after)
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Runs the query once and records the outcome.
    pub async fn run_once(&self, db: &DatabaseHandle) {
        let started = Instant::now();
        let result = db.run(&self.query).await;
        let duration = started.elapsed();
        let Ok(mut stats) = self.stats.lock() else {
            return;
        };
        stats.runs += 1;
        stats.duration = duration;
        match result {
            Ok(conversion) => {
                self.report(&conversion);
                stats.success = true;
                stats.series = conversion.series;
                stats.dropped_cardinality += conversion.dropped;
                stats.dropped_duplicate += conversion.duplicates;
                stats.last_success_unix = Some(unix_now());
                if let Ok(mut history) = self.history.lock() {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    history.record(&conversion.table, unix_now() as u64);
                }
                // The previous snapshot's buffers go as soon as no exposition uses them.
                self.snapshot
                    .store(Some(Arc::new(Snapshot::new(conversion.table))));
            }
            Err(error) => {
                stats.success = false;
                stats.errors += 1;
                // While the database backs off, every run fails the same way without
                // trying: the failure that started it was logged, and the retry will be.
                if matches!(error, super::Error::BackingOff(_)) {
                    tracing::debug!(%error, query = %self.query.name, database = %db.name, "query skipped");
                } else {
                    tracing::warn!(%error, query = %self.query.name, database = %db.name, "query failed");
                }
            }
        }
    }

    fn report(&self, c: &Conversion) {
        let query = &self.query.name;
        tracing::debug!(query, rows = c.rows_read, series = c.series, "query ran");
        if c.dropped > 0 {
            tracing::warn!(
                query,
                rows = c.rows_read,
                max_series = self.query.max_series,
                "max_series reached; the rest of the result was not read"
            );
        }
        if c.duplicates > 0 {
            tracing::warn!(
                query,
                duplicates = c.duplicates,
                "rows with a repeated label set dropped (first kept)"
            );
        }
        if c.unparsable > 0 {
            tracing::warn!(
                query,
                count = c.unparsable,
                example = c.unparsable_example.as_deref().unwrap_or_default(),
                "non-numeric values skipped"
            );
        }
        if c.lossy > 0 {
            tracing::warn!(
                query,
                count = c.lossy,
                "values beyond 2^53 lost precision as float64"
            );
        }
    }

    /// Runs forever on the query's schedule; aborted by dropping its task.
    pub async fn schedule(self: Arc<Self>, db: Arc<DatabaseHandle>) {
        let interval = self.query.interval;
        let first = interval
            .min(Duration::from_secs(2))
            .mul_f64(fastrand::f64());
        tokio::time::sleep(first).await;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.run_once(&db).await;
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
