//! PostgreSQL through `tokio-postgres` with a small deadpool pool: sessions default to
//! read-only transactions in UTC, `statement_timeout` bounds each query on the server,
//! and a client-side timeout cancels the query and discards the connection.

use std::str::FromStr as _;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::Type;

use super::Error;
use super::rows::ResultSet;
use super::value::Value;
use crate::config::Database;

#[derive(Debug)]
pub struct Postgres {
    pool: Pool,
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
            .connect_timeout(db.connect_timeout);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(usize::try_from(db.max_connections).unwrap_or(1).max(1))
            .create_timeout(Some(db.connect_timeout))
            .wait_timeout(Some(db.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| Error::Config(error.to_string()))?;
        Ok(Self { pool })
    }

    pub async fn query(&self, sql: &str, timeout: Duration) -> Result<ResultSet, Error> {
        let client = self.pool.get().await.map_err(|error| match error {
            deadpool_postgres::PoolError::Backend(e) => Error::Connect(describe(&e)),
            other => Error::Connect(other.to_string()),
        })?;
        let set_timeout = format!("SET statement_timeout = {}", timeout.as_millis());
        client
            .batch_execute(&set_timeout)
            .await
            .map_err(|e| query_error(&e))?;
        let run = client.query(sql, &[]);
        match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
            Ok(Ok(rows)) => Ok(convert(&rows)),
            Ok(Err(error)) => Err(query_error(&error)),
            Err(_) => {
                let cancel = client.cancel_token();
                // Never hand this connection out again.
                drop(deadpool_postgres::Object::take(client));
                if let Err(error) = cancel.cancel_query(NoTls).await {
                    tracing::warn!(error = %describe(&error), "could not cancel a timed-out query");
                }
                Err(Error::Timeout(timeout))
            }
        }
    }

    pub fn close(&self) {
        self.pool.close();
    }
}

fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
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

fn convert(rows: &[tokio_postgres::Row]) -> ResultSet {
    let Some(first) = rows.first() else {
        return ResultSet::default();
    };
    let columns = first
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let rows = rows
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| cell(row, i, row.columns()[i].type_()))
                .collect()
        })
        .collect();
    ResultSet { columns, rows }
}

/// Reads one cell by its PostgreSQL type; anything unreadable becomes NULL.
fn cell(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Value {
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
    ) -> Option<T> {
        row.try_get::<_, Option<T>>(i).ok().flatten()
    }
    let value = match *ty {
        Type::BOOL => get::<bool>(row, i).map(Value::Bool),
        Type::INT2 => get::<i16>(row, i).map(|v| Value::Int(v.into())),
        Type::INT4 => get::<i32>(row, i).map(|v| Value::Int(v.into())),
        Type::INT8 => get::<i64>(row, i).map(Value::Int),
        Type::OID => get::<u32>(row, i).map(|v| Value::UInt(v.into())),
        Type::FLOAT4 => get::<f32>(row, i).map(|v| Value::Float(v.into())),
        Type::FLOAT8 => get::<f64>(row, i).map(Value::Float),
        Type::NUMERIC => {
            get::<rust_decimal::Decimal>(row, i).map(|d| Value::Decimal(d.to_string()))
        }
        Type::DATE => get::<chrono::NaiveDate>(row, i)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| Value::Time(dt.and_utc().timestamp() as f64)),
        Type::TIMESTAMP => get::<chrono::NaiveDateTime>(row, i)
            .map(|dt| Value::Time(dt.and_utc().timestamp_micros() as f64 / 1e6)),
        Type::TIMESTAMPTZ => get::<chrono::DateTime<chrono::Utc>>(row, i)
            .map(|dt| Value::Time(dt.timestamp_micros() as f64 / 1e6)),
        _ => get::<String>(row, i).map(Value::Text),
    };
    value.unwrap_or(Value::Null)
}
