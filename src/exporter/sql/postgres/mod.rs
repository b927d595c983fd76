//! PostgreSQL through `tokio-postgres` with a small deadpool pool.
//!
//! Every run is one explicit `READ ONLY` transaction that is rolled back at the end, with
//! `SET LOCAL statement_timeout`: whatever the query sets (`SET SESSION …`,
//! `set_config(…)`) is undone with it, and a later run starts read-only again even if a
//! query ended the transaction itself. The SQL goes through the extended protocol, which
//! takes exactly one statement (the simple protocol would run `…; INSERT …`). Rows are
//! fetched from a portal in batches, so reading stops once the sink has enough: the
//! server never sends the rest. Sessions are in UTC; a client-side timeout cancels the
//! query and discards the connection. Values are decoded in [`decode`]. TLS follows
//! libpq's `sslmode` ([`super::tls`] checks the certificate as the mode says).

mod decode;

use std::str::FromStr as _;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType, Timeouts,
};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::Error;
use super::rows::{ResultSet, Sink};
use super::tls;
use crate::config::{Database, SslMode};

/// Rows fetched per round trip: small enough to bound memory, large enough to make the
/// round trips negligible.
const BATCH: i32 = 256;

pub struct Postgres {
    pool: Pool,
    /// Also carries cancel requests, which a TLS-only server wants over TLS too.
    tls: MakeRustlsConnect,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("pool", &self.pool)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Postgres {
    pub fn open(db: &Database) -> Result<Self, Error> {
        let mut config = tokio_postgres::Config::from_str(&db.url)
            .map_err(|error| Error::Config(format!("invalid PostgreSQL URL: {error}")))?;
        if let Some(password) = &db.password {
            config.password(password.expose());
        }
        config
            .options("-c default_transaction_read_only=on -c TimeZone=UTC")
            .application_name("lookout")
            .connect_timeout(db.connect_timeout)
            .ssl_mode(match db.tls.mode {
                SslMode::Disable => DriverSslMode::Disable,
                SslMode::Prefer => DriverSslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    DriverSslMode::Require
                }
            });
        let tls = MakeRustlsConnect::new(tls::client_config(&db.tls)?);
        let manager = Manager::from_config(
            config,
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(usize::try_from(db.max_connections).unwrap_or(1).max(1))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| Error::Config(error.to_string()))?;
        Ok(Self {
            pool,
            tls,
            connect_timeout: db.connect_timeout,
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
        let mut client = self.checkout(timeout).await?;
        let run = run(&mut client, sql, timeout, &mut sink);
        match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
            Ok(result) => result.map(|()| sink),
            Err(_) => Err(self.give_up(client, timeout).await),
        }
    }

    /// Runs `statements` in order on one connection, in one read-only transaction (a
    /// pack's run; after a failing statement the rest run in a new one): each statement's
    /// result or error. Fails as a whole only when no connection can be had or a
    /// transaction cannot start; the batch shares one `timeout`.
    pub async fn query_each(
        &self,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Result<ResultSet, Error>>, Error> {
        let mut client = self.checkout(timeout).await?;
        let run = run_each(&mut client, statements, timeout);
        match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
            Ok(results) => results,
            Err(_) => Err(self.give_up(client, timeout).await),
        }
    }

    /// A pooled connection, waiting up to `timeout` for a free one.
    async fn checkout(&self, timeout: Duration) -> Result<deadpool_postgres::Object, Error> {
        let timeouts = Timeouts {
            wait: Some(timeout),
            create: Some(self.connect_timeout),
            recycle: Some(self.connect_timeout),
        };
        self.pool
            .timeout_get(&timeouts)
            .await
            .map_err(|error| checkout_error(error, timeout))
    }

    /// Cancels what `client` runs and retires it (never handed out again).
    async fn give_up(&self, client: deadpool_postgres::Object, timeout: Duration) -> Error {
        let cancel = client.cancel_token();
        drop(deadpool_postgres::Object::take(client));
        if let Err(error) = cancel.cancel_query(self.tls.clone()).await {
            tracing::warn!(error = %describe(&error), "could not cancel a timed-out query");
        }
        Error::Timeout(timeout)
    }

    pub fn close(&self) {
        self.pool.close();
    }
}

/// One run: a read-only transaction around the statement, rolled back at the end.
async fn run<S: Sink>(
    client: &mut deadpool_postgres::Object,
    sql: &str,
    timeout: Duration,
    sink: &mut S,
) -> Result<(), Error> {
    let transaction = begin(client, timeout).await?;
    let fed = fetch(&transaction, sql, sink).await;
    // Rolling back also closes the portal and undoes anything the statement set.
    transaction.rollback().await.map_err(|e| query_error(&e))?;
    fed
}

/// Several statements in one read-only transaction; a failing statement aborts the
/// transaction, so the ones after it run in a new one.
async fn run_each(
    client: &mut deadpool_postgres::Object,
    statements: &[&str],
    timeout: Duration,
) -> Result<Vec<Result<ResultSet, Error>>, Error> {
    let mut results = Vec::with_capacity(statements.len());
    let mut rest = statements;
    while !rest.is_empty() {
        let transaction = begin(client, timeout).await?;
        while let Some((sql, after)) = rest.split_first() {
            rest = after;
            let mut sink = ResultSet::default();
            let fed = fetch(&transaction, sql, &mut sink).await;
            let failed = fed.is_err();
            results.push(fed.map(|()| sink));
            if failed {
                break;
            }
        }
        transaction.rollback().await.map_err(|e| query_error(&e))?;
    }
    Ok(results)
}

/// Starts a read-only transaction whose statements time out after `timeout`.
async fn begin(
    client: &mut deadpool_postgres::Object,
    timeout: Duration,
) -> Result<deadpool_postgres::Transaction<'_>, Error> {
    let transaction = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(|e| query_error(&e))?;
    transaction
        .batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            timeout.as_millis()
        ))
        .await
        .map_err(|e| query_error(&e))?;
    Ok(transaction)
}

/// Prepares `sql` and reads its portal in batches until the sink has enough.
async fn fetch<S: Sink>(
    transaction: &tokio_postgres::Transaction<'_>,
    sql: &str,
    sink: &mut S,
) -> Result<(), Error> {
    // tokio-postgres' own `prepare`, not deadpool's statement cache: every run prepares
    // afresh, so a changed table or view is seen.
    let statement = transaction
        .prepare(sql)
        .await
        .map_err(|e| query_error(&e))?;
    let columns = statement.columns();
    sink.columns(columns.iter().map(|c| c.name().to_owned()).collect())?;
    let portal = transaction
        .bind(&statement, &[])
        .await
        .map_err(|e| query_error(&e))?;
    loop {
        let rows = transaction
            .query_portal(&portal, BATCH)
            .await
            .map_err(|e| query_error(&e))?;
        for row in &rows {
            let cells = columns
                .iter()
                .enumerate()
                .map(|(i, column)| decode::cell(row, i, column.type_()))
                .collect();
            if sink.row(cells).is_break() {
                return Ok(());
            }
        }
        if rows.len() < BATCH as usize {
            return Ok(());
        }
    }
}

fn checkout_error(error: PoolError, waited: Duration) -> Error {
    match error {
        PoolError::Timeout(TimeoutType::Wait) => Error::Busy(waited),
        PoolError::Timeout(_) => Error::Connect("timed out connecting".to_owned()),
        PoolError::Backend(e) => Error::Connect(describe(&e)),
        other => Error::Connect(other.to_string()),
    }
}

/// The server's message and SQLSTATE, or the client's error with the cause it wraps
/// (a failed TLS handshake says why only in its cause).
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match tls::rustls_cause(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

fn query_error(error: &tokio_postgres::Error) -> Error {
    if error.as_db_error().is_some() {
        Error::Query(describe(error))
    } else {
        Error::Connect(describe(error))
    }
}
