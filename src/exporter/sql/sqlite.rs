//! SQLite through `rusqlite` (bundled): read-only connections used on blocking threads,
//! at most `max_connections` at a time, interrupted when a query outlives its timeout.
//! `prepare` takes exactly one statement (rusqlite refuses trailing ones), `query_only`
//! is set again on every run, and rows are stepped one at a time until the sink has
//! enough; the statement is then reset without reading the rest.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::Error;
use super::rows::Sink;
use super::value::{Value, parse_datetime};
use crate::config::Database;

#[derive(Debug)]
pub struct Sqlite {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Sqlite {
    pub fn open(db: &Database) -> Result<Self, Error> {
        let path = db.url.strip_prefix("sqlite://").ok_or_else(|| {
            Error::Config("SQLite URLs look like sqlite:///path/to/file.db".to_owned())
        })?;
        Ok(Self {
            path: PathBuf::from(path),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(usize::try_from(db.max_connections).unwrap_or(1).max(1)),
        })
    }

    fn connect(&self) -> Result<Connection, Error> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            // A previous statement may have switched it off (`PRAGMA query_only = 0`).
            conn.pragma_update(None, "query_only", true)
                .map_err(|e| Error::Query(e.to_string()))?;
            return Ok(conn);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|error| Error::Connect(format!("{}: {error}", self.path.display())))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| Error::Connect(e.to_string()))?;
        // Business queries scan once per interval; a small page cache keeps RSS low.
        conn.pragma_update(None, "cache_size", -512)
            .map_err(|e| Error::Connect(e.to_string()))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(|e| Error::Connect(e.to_string()))?;
        Ok(conn)
    }

    /// Runs `sql` and streams its rows into `sink`. Waits up to `timeout` for a free
    /// connection ([`Error::Busy`] after that).
    pub async fn query<S: Sink + 'static>(
        self: &std::sync::Arc<Self>,
        sql: &str,
        timeout: Duration,
        mut sink: S,
    ) -> Result<S, Error> {
        let _permit = tokio::time::timeout(timeout, self.permits.acquire())
            .await
            .map_err(|_| Error::Busy(timeout))?
            .map_err(|_| Error::Connect("pool closed".to_owned()))?;
        // Opening and preparing a connection may wait for a lock (busy_timeout): not on
        // the runtime's thread.
        let this = std::sync::Arc::clone(self);
        let conn = tokio::task::spawn_blocking(move || this.connect())
            .await
            .map_err(|join| Error::Query(format!("connection task failed: {join}")))??;
        let interrupt = conn.get_interrupt_handle();
        let this = std::sync::Arc::clone(self);
        let sql = sql.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let result = run(&conn, &sql, &mut sink);
            if let Ok(mut idle) = this.idle.lock() {
                idle.push(conn);
            }
            result.map(|()| sink)
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(Error::Query(format!("query task failed: {join}"))),
            Err(_) => {
                interrupt.interrupt();
                Err(Error::Timeout(timeout))
            }
        }
    }
}

fn run<S: Sink>(conn: &Connection, sql: &str, sink: &mut S) -> Result<(), Error> {
    let mut statement = conn.prepare(sql).map_err(|error| match error {
        rusqlite::Error::MultipleStatement => Error::Query(
            "a query must be exactly one statement; this SQL has more than one".to_owned(),
        ),
        other => Error::Query(other.to_string()),
    })?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    sink.columns(columns)?;
    let mut rows = statement
        .query([])
        .map_err(|e| Error::Query(e.to_string()))?;
    while let Some(row) = rows.next().map_err(|e| Error::Query(e.to_string()))? {
        let cells = (0..width)
            .map(|i| row.get_ref(i).map(cell))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Query(e.to_string()))?;
        if sink.row(cells).is_break() {
            break;
        }
    }
    Ok(())
}

fn cell(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Float(v),
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            match parse_datetime(&text) {
                Some(seconds) => Value::Time(seconds),
                None => Value::Text(text),
            }
        }
        ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
    }
}
