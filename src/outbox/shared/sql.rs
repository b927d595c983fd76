//! PostgreSQL and MySQL/MariaDB behind one small interface, for the shared outbox: a pool,
//! transactions, statements written once with `?` placeholders (numbered `$n` for
//! PostgreSQL), and values that are only ever integers, text or NULL (the schema keeps
//! to `BIGINT` and text, so both drivers agree on every type).
//!
//! Sessions are `READ COMMITTED` on both engines (MySQL's default, `REPEATABLE READ`,
//! would show a transaction a stale snapshot between its locking reads) and in UTC.
//! MySQL reports matched rows as affected (`CLIENT_FOUND_ROWS`), as PostgreSQL does.

use std::str::FromStr as _;
use std::time::Duration;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime, Timeouts};
use mysql_async::prelude::Queryable as _;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::config::{Database, DatabaseKind, SslMode};

/// Which SQL the database speaks where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    /// `pg` on PostgreSQL, `my` on MySQL.
    pub(super) fn pick<'a>(self, pg: &'a str, my: &'a str) -> &'a str {
        match self {
            Dialect::Postgres => pg,
            Dialect::Mysql => my,
        }
    }
}

/// A database failure; `conflict` when the engine gave up on the transaction to break a
/// deadlock or a serialization conflict (running it again is the remedy).
#[derive(Debug, Clone)]
pub(super) struct SqlError {
    pub(super) message: String,
    pub(super) conflict: bool,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl SqlError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        SqlError {
            message: message.into(),
            conflict: false,
        }
    }
}

impl From<tokio_postgres::Error> for SqlError {
    fn from(error: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let conflict = error.code().is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        });
        // tokio-postgres's Display of a server error is only "db error"; the cause says what.
        let message = match error.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => match std::error::Error::source(&error) {
                Some(cause) => format!("{error}: {cause}"),
                None => error.to_string(),
            },
        };
        SqlError { message, conflict }
    }
}

impl From<deadpool_postgres::PoolError> for SqlError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => SqlError::from(error),
            other => SqlError::new(format!("cannot connect: {other}")),
        }
    }
}

impl From<mysql_async::Error> for SqlError {
    fn from(error: mysql_async::Error) -> Self {
        /// ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
        const CONFLICTS: [u16; 2] = [1213, 1205];
        let conflict =
            matches!(&error, mysql_async::Error::Server(e) if CONFLICTS.contains(&e.code));
        SqlError {
            message: error.to_string(),
            conflict,
        }
    }
}

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Int(i64::from(value))
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Value::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(value)
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Value::Text(value.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// `params![a, b, …]`: a parameter list of anything that converts into a [`Value`].
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::outbox::shared::sql::Value::from($value)),*][..]
    };
}
pub(super) use params;

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Text(s) => s.as_str().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2 | Type::INT4 | Type::INT8 | Type::BOOL | Type::TEXT | Type::VARCHAR
        )
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            _ => Value::Text(<&str>::from_sql(ty, raw)?.to_owned()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::BOOL
                | Type::TEXT
                | Type::VARCHAR
                | Type::NAME
        )
    }
}

fn from_mysql(value: mysql_async::Value) -> Value {
    use mysql_async::Value as My;
    match value {
        My::NULL => Value::Null,
        My::Int(i) => Value::Int(i),
        My::UInt(u) => Value::Int(i64::try_from(u).unwrap_or(i64::MAX)),
        My::Bytes(bytes) => Value::Text(String::from_utf8_lossy(&bytes).into_owned()),
        // No column of the schema is a float or a date.
        other => Value::Text(other.as_sql(true)),
    }
}

fn to_mysql(value: &Value) -> mysql_async::Value {
    match value {
        Value::Null => mysql_async::Value::NULL,
        Value::Int(i) => mysql_async::Value::Int(*i),
        Value::Text(s) => mysql_async::Value::Bytes(s.as_bytes().to_vec()),
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub(super) struct Row(Vec<Value>);

impl Row {
    fn value(&self, index: usize) -> Result<&Value, SqlError> {
        self.0
            .get(index)
            .ok_or_else(|| SqlError::new(format!("no column {index} in the result")))
    }

    pub(super) fn int(&self, index: usize) -> Result<i64, SqlError> {
        self.opt_int(index)?
            .ok_or_else(|| SqlError::new(format!("column {index} is NULL")))
    }

    /// Integers may come as text (MySQL's DECIMAL sums).
    pub(super) fn opt_int(&self, index: usize) -> Result<Option<i64>, SqlError> {
        match self.value(index)? {
            Value::Null => Ok(None),
            Value::Int(i) => Ok(Some(*i)),
            Value::Text(s) => s
                .split('.')
                .next()
                .and_then(|whole| whole.parse().ok())
                .map(Some)
                .ok_or_else(|| SqlError::new(format!("column {index} is not a number: {s}"))),
        }
    }

    pub(super) fn text(&self, index: usize) -> Result<String, SqlError> {
        self.opt_text(index)?
            .ok_or_else(|| SqlError::new(format!("column {index} is NULL")))
    }

    pub(super) fn opt_text(&self, index: usize) -> Result<Option<String>, SqlError> {
        match self.value(index)? {
            Value::Null => Ok(None),
            Value::Int(i) => Ok(Some(i.to_string())),
            Value::Text(s) => Ok(Some(s.clone())),
        }
    }
}

/// `?` placeholders numbered for PostgreSQL (`$1`, `$2`, …). Statements are lookout's
/// own and hold no `?` in literals.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// A pool of connections to the shared outbox's database.
pub(super) enum Pool {
    Postgres(deadpool_postgres::Pool, Timeouts),
    Mysql(mysql_async::Pool),
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pool::Postgres(..) => "Pool::Postgres",
            Pool::Mysql(_) => "Pool::Mysql",
        })
    }
}

impl Pool {
    pub(super) async fn open(db: &Database) -> Result<Pool, SqlError> {
        match db.kind {
            DatabaseKind::Postgres => open_postgres(db),
            DatabaseKind::Mysql => open_mysql(db).await,
            DatabaseKind::Sqlite => Err(SqlError::new("SQLite is not a shared outbox")),
        }
    }

    pub(super) fn dialect(&self) -> Dialect {
        match self {
            Pool::Postgres(..) => Dialect::Postgres,
            Pool::Mysql(_) => Dialect::Mysql,
        }
    }

    pub(super) async fn conn(&self) -> Result<Conn, SqlError> {
        match self {
            Pool::Postgres(pool, timeouts) => {
                Ok(Conn::Postgres(Box::new(pool.timeout_get(timeouts).await?)))
            }
            Pool::Mysql(pool) => Ok(Conn::Mysql(pool.get_conn().await?)),
        }
    }

    pub(super) async fn close(&self) {
        match self {
            Pool::Postgres(pool, _) => pool.close(),
            Pool::Mysql(pool) => {
                let _ = pool.clone().disconnect().await;
            }
        }
    }
}

fn open_postgres(db: &Database) -> Result<Pool, SqlError> {
    use tokio_postgres::config::SslMode as DriverSslMode;
    let mut config = tokio_postgres::Config::from_str(&db.url)
        .map_err(|error| SqlError::new(format!("invalid PostgreSQL URL: {error}")))?;
    if let Some(password) = &db.password {
        config.password(password.expose());
    }
    config
        .options("-c TimeZone=UTC -c default_transaction_isolation=read\\ committed")
        .application_name("lookout-outbox")
        .connect_timeout(db.connect_timeout)
        .ssl_mode(match db.tls.mode {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        });
    let tls = crate::exporter::sql::tls::client_config(&db.tls)
        .map_err(|error| SqlError::new(error.to_string()))?;
    let manager = Manager::from_config(
        config,
        tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(usize::try_from(db.max_connections).unwrap_or(1).max(1))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|error| SqlError::new(error.to_string()))?;
    let timeouts = Timeouts {
        wait: Some(Duration::from_secs(10)),
        create: Some(db.connect_timeout),
        recycle: Some(db.connect_timeout),
    };
    Ok(Pool::Postgres(pool, timeouts))
}

/// Under `ssl-mode=preferred` a server that offers no TLS gets plaintext, as the
/// `mysql` client does: the first connection finds out.
async fn open_mysql(db: &Database) -> Result<Pool, SqlError> {
    use mysql_async::{Opts, OptsBuilder, PoolConstraints, PoolOpts};
    let opts = Opts::from_url(&db.url)
        .map_err(|error| SqlError::new(format!("invalid MySQL URL: {error}")))?;
    let max = usize::try_from(db.max_connections).unwrap_or(1).max(1);
    let constraints = PoolConstraints::new(0, max)
        .ok_or_else(|| SqlError::new("invalid pool size".to_owned()))?;
    let mut builder = OptsBuilder::from_opts(opts)
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                .with_inactive_connection_ttl(Duration::from_secs(300))
                .with_reset_connection(false),
        )
        .client_found_rows(true)
        .setup(vec![
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET time_zone = '+00:00'",
            "SET NAMES utf8mb4",
        ]);
    if let Some(password) = &db.password {
        builder = builder.pass(Some(password.expose()));
    }
    let plain = Opts::from(builder.clone());
    let opts = Opts::from(builder.ssl_opts(crate::exporter::sql::mysql::tls_opts(&db.tls)));
    if db.tls.mode == SslMode::Prefer {
        let probe = tokio::time::timeout(db.connect_timeout, mysql_async::Conn::new(opts.clone()))
            .await
            .map_err(|_| SqlError::new("timed out connecting"))?;
        match probe {
            Ok(conn) => drop(conn.disconnect().await),
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) => {
                tracing::info!(
                    "the outbox's MySQL server offers no TLS; connecting in plaintext (ssl-mode=preferred)"
                );
                return Ok(Pool::Mysql(mysql_async::Pool::new(plain)));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Pool::Mysql(mysql_async::Pool::new(opts)))
}

/// A connection taken from the pool.
pub(super) enum Conn {
    Postgres(Box<deadpool_postgres::Object>),
    Mysql(mysql_async::Conn),
}

impl Conn {
    /// Runs `sql` (one or more statements, no parameters) outside a transaction.
    pub(super) async fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        match self {
            Conn::Postgres(client) => Ok(client.batch_execute(sql).await?),
            Conn::Mysql(conn) => Ok(conn.query_drop(sql).await?),
        }
    }

    pub(super) async fn begin(&mut self) -> Result<Tx<'_>, SqlError> {
        match self {
            Conn::Postgres(client) => Ok(Tx::Postgres(client.transaction().await?)),
            Conn::Mysql(conn) => Ok(Tx::Mysql(
                conn.start_transaction(mysql_async::TxOpts::default())
                    .await?,
            )),
        }
    }
}

fn pg_params(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn pg_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<Row>, SqlError> {
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.try_get::<_, Value>(i).map_err(SqlError::from))
                .collect::<Result<Vec<_>, _>>()
                .map(Row)
        })
        .collect()
}

fn my_params(params: &[Value]) -> mysql_async::Params {
    if params.is_empty() {
        mysql_async::Params::Empty
    } else {
        mysql_async::Params::Positional(params.iter().map(to_mysql).collect())
    }
}

fn my_rows(rows: Vec<mysql_async::Row>) -> Result<Vec<Row>, SqlError> {
    Ok(rows
        .into_iter()
        .map(|row| Row(row.unwrap().into_iter().map(from_mysql).collect()))
        .collect())
}

/// A transaction: rolled back when dropped without [`Tx::commit`].
pub(super) enum Tx<'a> {
    Postgres(deadpool_postgres::Transaction<'a>),
    Mysql(mysql_async::Transaction<'a>),
}

impl Tx<'_> {
    pub(super) async fn query(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Row>, SqlError> {
        match self {
            Tx::Postgres(tx) => {
                let statement = tx.prepare_cached(&numbered(sql)).await?;
                let rows = tx.query(&statement, &pg_params(params)).await?;
                pg_rows(&rows)
            }
            Tx::Mysql(tx) => my_rows(tx.exec(sql, my_params(params)).await?),
        }
    }

    /// The first row, if any.
    pub(super) async fn query_opt(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// The only row (an error if there is none).
    pub(super) async fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, SqlError> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| SqlError::new("the statement returned no row"))
    }

    /// Runs a statement; the rows it matched.
    pub(super) async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        match self {
            Tx::Postgres(tx) => {
                let statement = tx.prepare_cached(&numbered(sql)).await?;
                Ok(tx.execute(&statement, &pg_params(params)).await?)
            }
            Tx::Mysql(tx) => {
                tx.exec_drop(sql, my_params(params)).await?;
                Ok(tx.affected_rows())
            }
        }
    }

    /// Runs an `INSERT` into a table with an `id` column; the new row's id.
    pub(super) async fn insert(&mut self, sql: &str, params: &[Value]) -> Result<i64, SqlError> {
        match self {
            Tx::Postgres(_) => {
                let returning = format!("{sql} RETURNING id");
                self.query_one(&returning, params).await?.int(0)
            }
            Tx::Mysql(tx) => {
                tx.exec_drop(sql, my_params(params)).await?;
                tx.last_insert_id()
                    .and_then(|id| i64::try_from(id).ok())
                    .ok_or_else(|| SqlError::new("the insert gave no id"))
            }
        }
    }

    pub(super) async fn commit(self) -> Result<(), SqlError> {
        match self {
            Tx::Postgres(tx) => Ok(tx.commit().await?),
            Tx::Mysql(tx) => Ok(tx.commit().await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("UPDATE t SET a = ? WHERE id = ? AND b = ?"),
            "UPDATE t SET a = $1 WHERE id = $2 AND b = $3"
        );
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn integers_read_from_text_and_nulls_are_told_apart() {
        let row = Row(vec![
            Value::Text("12345".to_owned()),
            Value::Text("12.00".to_owned()),
            Value::Null,
            Value::Int(7),
        ]);
        assert_eq!(row.int(0).unwrap(), 12345);
        assert_eq!(row.int(1).unwrap(), 12);
        assert_eq!(row.opt_int(2).unwrap(), None);
        assert!(row.int(2).is_err());
        assert_eq!(row.text(3).unwrap(), "7");
        assert!(row.int(4).is_err());
    }
}
