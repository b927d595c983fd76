//! SQLite through `rusqlite` (bundled): read-only connections used on blocking threads,
//! at most `max_connections` at a time, interrupted when a query outlives its timeout.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::Error;
use super::rows::ResultSet;
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

    pub async fn query(
        self: &std::sync::Arc<Self>,
        sql: &str,
        timeout: Duration,
    ) -> Result<ResultSet, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Connect("pool closed".to_owned()))?;
        let conn = self.connect()?;
        let interrupt = conn.get_interrupt_handle();
        let this = std::sync::Arc::clone(self);
        let sql = sql.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let result = run(&conn, &sql);
            if let Ok(mut idle) = this.idle.lock() {
                idle.push(conn);
            }
            result
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

fn run(conn: &Connection, sql: &str) -> Result<ResultSet, Error> {
    let mut statement = conn.prepare(sql).map_err(|e| Error::Query(e.to_string()))?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    let mut rows = statement
        .query([])
        .map_err(|e| Error::Query(e.to_string()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| Error::Query(e.to_string()))? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            let cell = match row.get_ref(i).map_err(|e| Error::Query(e.to_string()))? {
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
            };
            cells.push(cell);
        }
        out.push(cells);
    }
    Ok(ResultSet { columns, rows: out })
}
