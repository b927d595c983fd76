//! MySQL and MariaDB through `mysql_async`: a small pool, read-only sessions in UTC, and a
//! server-side statement timeout (`max_statement_time` on MariaDB, `MAX_EXECUTION_TIME`
//! on MySQL) behind the client-side one, with `KILL QUERY` if the client gives up first.
//!
//! The configured SQL runs as a prepared statement: the server prepares exactly one
//! statement, so `SET SESSION TRANSACTION READ WRITE; INSERT …` is a syntax error
//! instead of a write (`mysql_async` always asks for `CLIENT_MULTI_STATEMENTS`, so the
//! text protocol would run both). Before every run the session is reset — open
//! transaction rolled back, read-only, autocommit, UTC, statement timeout — so nothing a
//! previous statement set on a pooled connection carries over. Rows are read one at a
//! time; once the sink has enough, the rest of the result is read and discarded without
//! decoding (the protocol cannot end a result set early short of closing the connection),
//! within the query's timeout.
//!
//! TLS follows `ssl-mode` ([`tls_opts`]). Two facts are learned on the first connection
//! and the pool rebuilt with them: under `preferred`, a server that offers no TLS gets
//! plaintext (as the `mysql` client does); under `verify-ca`, where any host name is
//! acceptable but the driver cannot skip the name check (its check looks for a name in
//! the text of an error that newer rustls words differently), the name the CA-verified
//! certificate presents becomes the name checked.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable as _;
use mysql_async::{
    BinaryProtocol, ClientIdentity, Conn, DriverError, Opts, OptsBuilder, Pool, PoolConstraints,
    PoolOpts, QueryResult, SslOpts,
};
use tokio::sync::Semaphore;

use super::Error;
use super::rows::{ResultSet, Sink};
use super::tls;
use super::value::{Value, parse_datetime};
use crate::config::{Database, DatabaseTls, SslMode};

/// Which statement-timeout variable the server understands.
const FLAVOR_UNKNOWN: u8 = 0;
const FLAVOR_MARIADB: u8 = 1;
const FLAVOR_MYSQL: u8 = 2;

/// MariaDB's "unknown system variable".
const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;
/// "You have an error in your SQL syntax".
const ER_PARSE_ERROR: u16 = 1064;

#[derive(Debug)]
pub struct Mysql {
    /// Replaced (never changed in place) when a connection teaches something about TLS.
    pool: Mutex<Pool>,
    /// The options the pool was built from, to rebuild it.
    opts: Mutex<Opts>,
    mode: SslMode,
    /// One permit per pooled connection: waiting for a permit is waiting for another
    /// query, not for the database (the pool itself cannot tell the two apart).
    permits: Semaphore,
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
        let opts = Opts::from(builder.ssl_opts(tls_opts(&db.tls)));
        Ok(Self {
            pool: Mutex::new(Pool::new(opts.clone())),
            opts: Mutex::new(opts),
            mode: db.tls.mode,
            permits: Semaphore::new(max),
            connect_timeout: db.connect_timeout,
            flavor: AtomicU8::new(FLAVOR_UNKNOWN),
        })
    }

    /// Runs `sql` and streams its rows into `sink`. Waits up to `timeout` for a free
    /// connection ([`Error::Busy`] after that).
    pub async fn query<S: Sink>(
        &self,
        sql: &str,
        timeout: Duration,
        mut sink: S,
    ) -> Result<S, Error> {
        let _permit = tokio::time::timeout(timeout, self.permits.acquire())
            .await
            .map_err(|_| Error::Busy(timeout))?
            .map_err(|_| Error::Connect("pool closed".to_owned()))?;
        let mut conn = self.connect().await?;
        self.reset_session(&mut conn, timeout).await?;
        let id = conn.id();
        // The server enforces `timeout`; the client waits a little longer before
        // giving up on a server that does not.
        let run = run(&mut conn, sql, &mut sink);
        match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
            Ok(result) => result.map(|()| sink),
            Err(_) => {
                drop(conn);
                self.kill(id).await;
                Err(Error::Timeout(timeout))
            }
        }
    }

    /// Runs `statements` in order on one connection after one session reset (a pack's
    /// run): each statement's result or error. Fails as a whole only when no connection
    /// can be had or the reset fails; the batch shares one `timeout`.
    pub async fn query_each(
        &self,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Result<ResultSet, Error>>, Error> {
        let _permit = tokio::time::timeout(timeout, self.permits.acquire())
            .await
            .map_err(|_| Error::Busy(timeout))?
            .map_err(|_| Error::Connect("pool closed".to_owned()))?;
        let mut conn = self.connect().await?;
        self.reset_session(&mut conn, timeout).await?;
        let id = conn.id();
        let run = async {
            let mut results = Vec::with_capacity(statements.len());
            for sql in statements {
                let mut sink = ResultSet::default();
                results.push(run(&mut conn, sql, &mut sink).await.map(|()| sink));
            }
            results
        };
        match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
            Ok(results) => Ok(results),
            Err(_) => {
                drop(conn);
                self.kill(id).await;
                Err(Error::Timeout(timeout))
            }
        }
    }

    /// Puts the session back into the state lookout relies on, whatever an earlier
    /// statement on this pooled connection did to it: one round trip of fixed text, two
    /// statements (the `ROLLBACK` ends a transaction a query may have opened, which a
    /// session setting alone would leave read-write until it ends).
    async fn reset_session(&self, conn: &mut Conn, timeout: Duration) -> Result<(), Error> {
        const RESET: &str = "ROLLBACK; SET SESSION autocommit = 1, time_zone = '+00:00'";
        let mariadb = format!(
            "{RESET}, tx_read_only = 1, max_statement_time = {}",
            timeout.as_secs_f64()
        );
        let mysql = format!(
            "{RESET}, transaction_read_only = 1, MAX_EXECUTION_TIME = {}",
            timeout.as_millis()
        );
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

    fn pool(&self) -> Pool {
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A pooled connection; rebuilds the pool once when the failure taught a TLS fact.
    async fn connect(&self) -> Result<Conn, Error> {
        let attempt = || async {
            tokio::time::timeout(self.connect_timeout, self.pool().get_conn())
                .await
                .map_err(|_| Error::Connect("timed out connecting".to_owned()))
        };
        match attempt().await? {
            Ok(conn) => Ok(conn),
            Err(error) => {
                if !self.learn(&error) {
                    return Err(connect_error(error));
                }
                attempt().await?.map_err(connect_error)
            }
        }
    }

    /// Rebuilds the pool if `error` says how to connect as the mode means; whether it did.
    fn learn(&self, error: &mysql_async::Error) -> bool {
        let mut opts = self
            .opts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(ssl) = opts.ssl_opts().cloned() else {
            return false;
        };
        let next = match error {
            mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer)
                if self.mode == SslMode::Prefer =>
            {
                tracing::info!(
                    "the MySQL server offers no TLS; connecting in plaintext (ssl-mode=preferred)"
                );
                OptsBuilder::from_opts(opts.clone()).ssl_opts(None)
            }
            error if ssl.skip_domain_validation() => {
                let Some(presented) = tls::rustls_cause(error).and_then(tls::presented_name) else {
                    return false;
                };
                if ssl.tls_hostname_override() == Some(presented.as_str()) {
                    return false;
                }
                tracing::debug!(name = %presented, "verify-ca: checking the CA-signed certificate under the name it presents");
                OptsBuilder::from_opts(opts.clone())
                    .ssl_opts(ssl.with_danger_tls_hostname_override(Some(presented)))
            }
            _ => return false,
        };
        let next = Opts::from(next);
        let old = std::mem::replace(
            &mut *self
                .pool
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Pool::new(next.clone()),
        );
        *opts = next;
        tokio::spawn(old.disconnect());
        true
    }

    /// Best effort: stop a statement the server did not time out itself.
    async fn kill(&self, id: u32) {
        let killed = async {
            let mut conn = self.pool().get_conn().await?;
            conn.query_drop(format!("KILL QUERY {id}")).await
        };
        if let Ok(Err(error)) = tokio::time::timeout(self.connect_timeout, killed).await {
            tracing::warn!(%error, connection = id, "could not kill a timed-out query");
        }
    }

    pub async fn close(self) {
        let pool = self
            .pool
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = pool.disconnect().await;
    }
}

/// The driver's TLS options for `tls`: `None` is plaintext.
pub(crate) fn tls_opts(tls: &DatabaseTls) -> Option<SslOpts> {
    let buf = |text: &str| text.as_bytes().to_vec().into();
    let mut ssl = match tls.mode {
        SslMode::Disable => return None,
        mode if !mode.verifies(tls.ca_pem.is_some()) => {
            SslOpts::default().with_danger_accept_invalid_certs(true)
        }
        SslMode::VerifyFull => SslOpts::default(),
        _ => SslOpts::default().with_danger_skip_domain_validation(true),
    };
    if let Some(ca) = &tls.ca_pem {
        ssl = ssl
            .with_root_certs(vec![buf(ca)])
            .with_disable_built_in_roots(true);
    }
    if let Some(identity) = &tls.identity {
        ssl = ssl.with_client_identity(Some(ClientIdentity::new(
            buf(&identity.cert_pem),
            buf(identity.key_pem.expose()),
        )));
    }
    Some(ssl)
}

/// Runs `sql` as one prepared statement; leaves the connection clean for the pool.
async fn run<S: Sink>(conn: &mut Conn, sql: &str, sink: &mut S) -> Result<(), Error> {
    let sql = sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let mut result = conn
        .exec_iter(sql, ())
        .await
        .map_err(|error| prepare_error(error, sql))?;
    let fed = feed(&mut result, sink).await;
    // Whatever the sink did not want is read and discarded, undecoded.
    result.drop_result().await.map_err(query_error)?;
    fed
}

async fn feed<S: Sink>(
    result: &mut QueryResult<'_, '_, BinaryProtocol>,
    sink: &mut S,
) -> Result<(), Error> {
    let columns = result.columns();
    let columns = columns.as_deref().unwrap_or_default();
    sink.columns(columns.iter().map(|c| c.name_str().into_owned()).collect())?;
    let kinds: Vec<_> = columns
        .iter()
        .map(|c| (c.column_type(), c.flags()))
        .collect();
    while let Some(row) = result.next().await.map_err(query_error)? {
        let row = row
            .unwrap_raw()
            .into_iter()
            .zip(&kinds)
            .map(|(value, &(kind, flags))| convert(value, kind, flags))
            .collect();
        if sink.row(row).is_break() {
            break;
        }
    }
    Ok(())
}

/// A syntax error on SQL with a `;` inside is almost always a second statement.
fn prepare_error(error: mysql_async::Error, sql: &str) -> Error {
    match error {
        mysql_async::Error::Server(e) if e.code == ER_PARSE_ERROR && sql.contains(';') => {
            Error::Query(format!(
                "{} (MySQL error {}); a query must be exactly one statement: lookout runs it as a prepared statement, which cannot hold `;`-separated statements",
                e.message, e.code
            ))
        }
        other => query_error(other),
    }
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
    if let Some(cause) = tls::rustls_cause(&error) {
        return Error::Connect(format!("TLS handshake failed: {cause}"));
    }
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
