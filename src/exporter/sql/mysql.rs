//! MySQL and MariaDB through `mysql_async`: a small pool, read-only sessions in UTC, and a
//! server-side statement timeout (`max_statement_time` on MariaDB, `MAX_EXECUTION_TIME`
//! on MySQL) behind the client-side one, with `KILL QUERY` if the client gives up first.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use super::Error;
use super::rows::ResultSet;
use super::value::{Value, parse_datetime};
use crate::config::Database;

/// Which statement-timeout variable the server understands.
const FLAVOR_UNKNOWN: u8 = 0;
const FLAVOR_MARIADB: u8 = 1;
const FLAVOR_MYSQL: u8 = 2;

/// MariaDB's "unknown system variable".
const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;

#[derive(Debug)]
pub struct Mysql {
    pool: Pool,
    connect_timeout: Duration,
    flavor: AtomicU8,
}

impl Mysql {
    pub fn open(db: &Database) -> Result<Self, Error> {
        let opts = mysql_async::Opts::from_url(&db.url)
            .map_err(|error| Error::Config(format!("invalid MySQL URL: {error}")))?;
        let max = usize::try_from(db.max_connections).unwrap_or(1).max(1);
        let constraints = PoolConstraints::new(0, max)
            .ok_or_else(|| Error::Config("invalid pool size".to_owned()))?;
        let mut builder = OptsBuilder::from_opts(opts)
            // Connections stay pooled between runs (no reconnect per query) and are not
            // reset when returned; `setup` runs on every new (or reset) connection.
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(Duration::from_secs(300))
                    .with_reset_connection(false),
            )
            .setup(vec![
                "SET SESSION TRANSACTION READ ONLY",
                "SET time_zone = '+00:00'",
            ]);
        if let Some(password) = &db.password {
            builder = builder.pass(Some(password.expose()));
        }
        Ok(Self {
            pool: Pool::new(builder),
            connect_timeout: db.connect_timeout,
            flavor: AtomicU8::new(FLAVOR_UNKNOWN),
        })
    }

    pub async fn query(&self, sql: &str, timeout: Duration) -> Result<ResultSet, Error> {
        let mut conn = tokio::time::timeout(self.connect_timeout, self.pool.get_conn())
            .await
            .map_err(|_| Error::Connect("timed out connecting".to_owned()))?
            .map_err(connect_error)?;
        self.set_statement_timeout(&mut conn, timeout).await?;
        let id = conn.id();
        // The server enforces `timeout`; the client waits a little longer before
        // giving up on a server that does not.
        let run = run(&mut conn, sql);
        match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
            Ok(result) => result,
            Err(_) => {
                drop(conn);
                self.kill(id).await;
                Err(Error::Timeout(timeout))
            }
        }
    }

    async fn set_statement_timeout(&self, conn: &mut Conn, timeout: Duration) -> Result<(), Error> {
        let mariadb = format!("SET SESSION max_statement_time = {}", timeout.as_secs_f64());
        let mysql = format!("SET SESSION MAX_EXECUTION_TIME = {}", timeout.as_millis());
        match self.flavor.load(Ordering::Relaxed) {
            FLAVOR_MARIADB => conn.query_drop(mariadb).await.map_err(query_error),
            FLAVOR_MYSQL => conn.query_drop(mysql).await.map_err(query_error),
            _ => match conn.query_drop(mariadb).await {
                Ok(()) => {
                    self.flavor.store(FLAVOR_MARIADB, Ordering::Relaxed);
                    Ok(())
                }
                Err(mysql_async::Error::Server(e)) if e.code == ER_UNKNOWN_SYSTEM_VARIABLE => {
                    self.flavor.store(FLAVOR_MYSQL, Ordering::Relaxed);
                    conn.query_drop(mysql).await.map_err(query_error)
                }
                Err(error) => Err(query_error(error)),
            },
        }
    }

    /// Best effort: stop a statement the server did not time out itself.
    async fn kill(&self, id: u32) {
        let killed = async {
            let mut conn = self.pool.get_conn().await?;
            conn.query_drop(format!("KILL QUERY {id}")).await
        };
        if let Ok(Err(error)) = tokio::time::timeout(self.connect_timeout, killed).await {
            tracing::warn!(%error, connection = id, "could not kill a timed-out query");
        }
    }

    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

async fn run(conn: &mut Conn, sql: &str) -> Result<ResultSet, Error> {
    let mut result = conn.query_iter(sql).await.map_err(query_error)?;
    let columns = result.columns();
    let columns = columns.as_deref().unwrap_or_default();
    let names = columns.iter().map(|c| c.name_str().into_owned()).collect();
    let kinds: Vec<_> = columns
        .iter()
        .map(|c| (c.column_type(), c.flags()))
        .collect();
    let rows: Vec<mysql_async::Row> = result.collect().await.map_err(query_error)?;
    // Further result sets (multi-statement input) are drained and ignored.
    result.drop_result().await.map_err(query_error)?;
    let rows = rows
        .into_iter()
        .map(|row| {
            row.unwrap_raw()
                .into_iter()
                .zip(&kinds)
                .map(|(value, &(kind, flags))| convert(value, kind, flags))
                .collect()
        })
        .collect();
    Ok(ResultSet {
        columns: names,
        rows,
    })
}

fn convert(value: Option<mysql_async::Value>, kind: ColumnType, flags: ColumnFlags) -> Value {
    use mysql_async::Value as M;
    let Some(value) = value else {
        return Value::Null;
    };
    match value {
        M::NULL => Value::Null,
        M::Int(i) => Value::Int(i),
        M::UInt(u) => Value::UInt(u),
        M::Float(f) => Value::Float(f64::from(f)),
        M::Double(f) => Value::Float(f),
        M::Date(y, mo, d, h, mi, s, us) => {
            let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}");
            parse_datetime(&text).map_or(Value::Null, Value::Time)
        }
        M::Time(negative, days, h, mi, s, us) => {
            let seconds = f64::from(days) * 86400.0
                + f64::from(h) * 3600.0
                + f64::from(mi) * 60.0
                + f64::from(s)
                + f64::from(us) / 1e6;
            Value::Float(if negative { -seconds } else { seconds })
        }
        M::Bytes(bytes) => from_text(bytes, kind, flags),
    }
}

/// The text protocol sends every value as bytes; the column type says how to read them.
fn from_text(bytes: Vec<u8>, kind: ColumnType, flags: ColumnFlags) -> Value {
    use ColumnType as T;
    let Ok(text) = String::from_utf8(bytes) else {
        return Value::Null;
    };
    match kind {
        T::MYSQL_TYPE_TINY
        | T::MYSQL_TYPE_SHORT
        | T::MYSQL_TYPE_INT24
        | T::MYSQL_TYPE_LONG
        | T::MYSQL_TYPE_LONGLONG
        | T::MYSQL_TYPE_YEAR => {
            if flags.contains(ColumnFlags::UNSIGNED_FLAG) {
                text.parse().map_or(Value::Text(text), Value::UInt)
            } else {
                text.parse().map_or(Value::Text(text), Value::Int)
            }
        }
        T::MYSQL_TYPE_FLOAT | T::MYSQL_TYPE_DOUBLE => {
            text.parse().map_or(Value::Text(text), Value::Float)
        }
        T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => Value::Decimal(text),
        T::MYSQL_TYPE_DATE
        | T::MYSQL_TYPE_DATETIME
        | T::MYSQL_TYPE_DATETIME2
        | T::MYSQL_TYPE_TIMESTAMP
        | T::MYSQL_TYPE_TIMESTAMP2
        | T::MYSQL_TYPE_NEWDATE => parse_datetime(&text).map_or(Value::Text(text), Value::Time),
        _ => Value::Text(text),
    }
}

fn connect_error(error: mysql_async::Error) -> Error {
    match error {
        mysql_async::Error::Server(e) => Error::Connect(format!("{} ({})", e.message, e.code)),
        other => Error::Connect(other.to_string()),
    }
}

fn query_error(error: mysql_async::Error) -> Error {
    match error {
        mysql_async::Error::Server(e) => {
            Error::Query(format!("{} (MySQL error {})", e.message, e.code))
        }
        mysql_async::Error::Io(e) => Error::Connect(e.to_string()),
        other => Error::Query(other.to_string()),
    }
}
