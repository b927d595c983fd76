//! One configured database: its backend (a small pool) and its health. A database that
//! cannot be reached is retried with capped exponential backoff: while it is backing off,
//! queries fail at once without touching the network, so an outage never becomes a
//! reconnect storm. Waiting in vain for a free pooled connection ([`Error::Busy`]) is no
//! outage: it changes neither the health nor the backoff.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Error;
use super::mysql::Mysql;
use super::postgres::Postgres;
use super::rows::{Conversion, Converter, ResultSet, Sink};
use super::sqlite::Sqlite;
use crate::backoff::Backoff;
use crate::config::{Database, DatabaseKind, Query};

/// The closed set of backends.
#[derive(Debug)]
pub enum Backend {
    Mysql(Mysql),
    Postgres(Postgres),
    Sqlite(Arc<Sqlite>),
}

impl Backend {
    pub fn open(db: &Database) -> Result<Self, Error> {
        Ok(match db.kind {
            DatabaseKind::Mysql => Backend::Mysql(Mysql::open(db)?),
            DatabaseKind::Postgres => Backend::Postgres(Postgres::open(db)?),
            DatabaseKind::Sqlite => Backend::Sqlite(Arc::new(Sqlite::open(db)?)),
        })
    }

    async fn query<S: Sink + 'static>(
        &self,
        sql: &str,
        timeout: Duration,
        sink: S,
    ) -> Result<S, Error> {
        match self {
            Backend::Mysql(b) => b.query(sql, timeout, sink).await,
            Backend::Postgres(b) => b.query(sql, timeout, sink).await,
            Backend::Sqlite(b) => b.query(sql, timeout, sink).await,
        }
    }

    async fn query_each(
        &self,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Result<ResultSet, Error>>, Error> {
        match self {
            Backend::Mysql(b) => b.query_each(statements, timeout).await,
            Backend::Postgres(b) => b.query_each(statements, timeout).await,
            Backend::Sqlite(b) => {
                let mut results = Vec::with_capacity(statements.len());
                for sql in statements {
                    results.push(b.query(sql, timeout, ResultSet::default()).await);
                }
                Ok(results)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Health {
    up: bool,
    failures: u32,
    retry_at: Option<Instant>,
    connection_errors: u64,
}

/// A database as the scheduler sees it.
#[derive(Debug)]
pub struct DatabaseHandle {
    pub name: String,
    pub config: Database,
    backend: Result<Backend, Error>,
    health: Mutex<Health>,
    backoff: Backoff,
}

/// Reconnect backoff: 1 s doubling to 1 min.
const RECONNECT: Backoff = Backoff::constant(Duration::from_secs(1), Duration::from_secs(60));

impl DatabaseHandle {
    pub fn new(name: &str, config: &Database) -> Self {
        let backend = Backend::open(config);
        if let Err(error) = &backend {
            tracing::error!(%error, database = name, "database cannot be opened");
        }
        Self {
            name: name.to_owned(),
            config: config.clone(),
            backend,
            health: Mutex::new(Health::default()),
            backoff: RECONNECT,
        }
    }

    /// Runs `query` and converts its rows as they stream in, reading no further than
    /// its `max_series` needs.
    pub async fn run(&self, query: &Query) -> Result<Conversion, Error> {
        let converter = self
            .stream(&query.sql, query.timeout, Converter::new(query))
            .await?;
        converter
            .finish()
            .map_err(|error| Error::Query(error.to_string()))
    }

    /// Runs `sql` and returns every row (`lookout query`, tests).
    pub async fn query(&self, sql: &str, timeout: Duration) -> Result<ResultSet, Error> {
        self.stream(sql, timeout, ResultSet::default()).await
    }

    /// Runs `statements` in order on one connection (a pack's run, one session reset or
    /// transaction for all): each one's result, or the error that kept the batch from
    /// running at all (no connection, backing off).
    pub async fn query_each(
        &self,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Result<ResultSet, Error>>, Error> {
        let backend = self.backend.as_ref().map_err(Clone::clone)?;
        if let Some(wait) = self.backing_off() {
            return Err(Error::BackingOff(wait));
        }
        let result = backend.query_each(statements, timeout).await;
        self.note(result.as_ref().map(|_| ()));
        result
    }

    /// Streams the rows of `sql` into `sink`, unless the database is backing off after
    /// connection failures.
    async fn stream<S: Sink + 'static>(
        &self,
        sql: &str,
        timeout: Duration,
        sink: S,
    ) -> Result<S, Error> {
        let backend = self.backend.as_ref().map_err(Clone::clone)?;
        if let Some(wait) = self.backing_off() {
            return Err(Error::BackingOff(wait));
        }
        let result = backend.query(sql, timeout, sink).await;
        self.note(result.as_ref().map(|_| ()));
        result
    }

    /// Updates the health from what a run met: a connection failure starts or extends
    /// the backoff; anything the server answered means it is up.
    fn note(&self, result: Result<(), &Error>) {
        if let Ok(mut health) = self.health.lock() {
            match result {
                // The database answered nothing about itself: leave its health alone.
                Err(Error::Busy(_)) => {}
                Err(Error::Connect(_)) => {
                    health.up = false;
                    health.failures = health.failures.saturating_add(1);
                    health.connection_errors += 1;
                    health.retry_at =
                        Some(Instant::now() + self.backoff.delay_random(health.failures));
                }
                _ => {
                    health.up = true;
                    health.failures = 0;
                    health.retry_at = None;
                }
            }
        }
    }

    fn backing_off(&self) -> Option<Duration> {
        let health = self.health.lock().ok()?;
        let wait = health.retry_at?.checked_duration_since(Instant::now())?;
        Some(wait)
    }

    pub fn is_up(&self) -> bool {
        self.health.lock().is_ok_and(|h| h.up)
    }

    pub fn connection_errors(&self) -> u64 {
        self.health.lock().map_or(0, |h| h.connection_errors)
    }

    /// Closes pools so connections do not linger after a reload or at shutdown.
    pub async fn close(self) {
        match self.backend {
            Ok(Backend::Mysql(b)) => b.close().await,
            Ok(Backend::Postgres(b)) => b.close(),
            Ok(Backend::Sqlite(_)) | Err(_) => {}
        }
    }
}
