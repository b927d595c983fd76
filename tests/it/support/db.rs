//! Scratch databases on the machine's MariaDB and PostgreSQL (127.0.0.1, the `lookout`
//! test user that `.ci/run` creates), each dropped when its guard goes out of scope.
//! Outside CI an unreachable server skips the test; in CI it fails it.

use std::time::Duration;

use lookout::config::Config;
use lookout::exporter::sql::Error;
use lookout::exporter::sql::database::DatabaseHandle;
use lookout::exporter::sql::rows::Conversion;
use mysql_async::prelude::Queryable as _;

/// The test user `.ci/run` creates on both servers.
pub(crate) const USER: &str = "lookout";
pub(crate) const PASSWORD: &str = "lookout";

fn unavailable(what: &str, error: &dyn std::fmt::Display) {
    let message = format!(
        "{what} is not reachable on 127.0.0.1 ({error}); `bash .ci/run` starts it and creates the `lookout` user"
    );
    if super::in_ci() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
}

fn scratch_name(prefix: &str) -> String {
    format!(
        "lookout_{prefix}_{}_{}",
        std::process::id(),
        fastrand::u32(..)
    )
}

/// A scratch MariaDB database.
pub(crate) struct MariaDb {
    pub(crate) name: String,
    pool: mysql_async::Pool,
    runtime: tokio::runtime::Runtime,
}

impl MariaDb {
    pub(crate) fn create() -> Option<MariaDb> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let name = scratch_name("my");
        let url = format!("mysql://{USER}:{PASSWORD}@127.0.0.1:3306/");
        let pool = mysql_async::Pool::new(url.as_str());
        let created = runtime.block_on(async {
            let mut conn = tokio::time::timeout(Duration::from_secs(5), pool.get_conn())
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
                .await
                .map_err(|e| e.to_string())
        });
        if let Err(error) = created {
            unavailable("MariaDB", &error);
            return None;
        }
        Some(MariaDb {
            name,
            pool,
            runtime,
        })
    }

    /// The URL lookout should use (password given separately).
    pub(crate) fn url(&self) -> String {
        format!("mysql://{USER}@127.0.0.1:3306/{}", self.name)
    }

    /// Runs statements as the test user, in this database.
    pub(crate) fn exec(&self, sql: &str) {
        let name = &self.name;
        self.runtime
            .block_on(async {
                let mut conn = self.pool.get_conn().await?;
                conn.query_drop(format!("USE `{name}`")).await?;
                conn.query_drop(sql).await
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs a query and returns the first column of every row as text.
    pub(crate) fn column(&self, sql: &str) -> Vec<Option<String>> {
        let name = &self.name;
        self.runtime
            .block_on(async {
                let mut conn = self.pool.get_conn().await?;
                conn.query_drop(format!("USE `{name}`")).await?;
                conn.query::<Option<String>, _>(sql).await
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let pool = self.pool.clone();
        let _ = self.runtime.block_on(async move {
            let mut conn = pool.get_conn().await?;
            conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                .await?;
            drop(conn);
            pool.disconnect().await
        });
    }
}

/// A scratch PostgreSQL database.
pub(crate) struct Postgres {
    pub(crate) name: String,
    runtime: tokio::runtime::Runtime,
}

async fn pg_connect(db: &str) -> Result<tokio_postgres::Client, String> {
    let url = format!("postgres://{USER}:{PASSWORD}@127.0.0.1:5432/{db}");
    let (client, connection) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    )
    .await
    .map_err(|_| "timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(client)
}

impl Postgres {
    pub(crate) fn create() -> Option<Postgres> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let name = scratch_name("pg");
        let created = runtime.block_on(async {
            let client = pg_connect("postgres").await?;
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .map_err(|e| e.to_string())
        });
        if let Err(error) = created {
            unavailable("PostgreSQL", &error);
            return None;
        }
        Some(Postgres { name, runtime })
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:5432/{}", self.name)
    }

    pub(crate) fn exec(&self, sql: &str) {
        self.runtime
            .block_on(async {
                let client = pg_connect(&self.name).await?;
                client.batch_execute(sql).await.map_err(|e| e.to_string())
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs a query through the simple protocol; first column of every row as text.
    pub(crate) fn column(&self, sql: &str) -> Vec<Option<String>> {
        self.runtime
            .block_on(async {
                let client = pg_connect(&self.name).await?;
                let messages = client.simple_query(sql).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(
                    messages
                        .into_iter()
                        .filter_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(row) => {
                                Some(row.get(0).map(str::to_owned))
                            }
                            _ => None,
                        })
                        .collect(),
                )
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = self.runtime.block_on(async move {
            let client = pg_connect("postgres").await?;
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .map_err(|e| e.to_string())
        });
    }
}

/// Runs query number `index` of `config` once through lookout's own database layer,
/// streaming and converting its rows as the scheduler does.
pub(crate) fn run(config: &Config, index: usize) -> Result<Conversion, Error> {
    let query = &config.queries[index];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let handle = DatabaseHandle::new(&query.database, &config.databases[&query.database]);
        let result = handle.run(query).await;
        handle.close().await;
        result
    })
}

/// A query waiting for the only pooled connection (held by `sleep_sql`, three seconds)
/// fails with "no free connection" after its timeout, while the database stays up and no
/// connection attempt fails; the next run goes straight to the database (no reconnect
/// backoff). `handle` has one connection.
pub(crate) fn check_busy_pool_is_not_an_outage(
    runtime: &tokio::runtime::Runtime,
    handle: &DatabaseHandle,
    sleep_sql: &str,
) {
    let (slow, fast, up_meanwhile, errors_meanwhile) = runtime.block_on(async {
        let first = handle.query("SELECT 1 AS n", Duration::from_secs(5)).await;
        assert!(first.is_ok() && handle.is_up(), "{first:?}");
        let slow = handle.query(sleep_sql, Duration::from_secs(10));
        let fast = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let result = handle.query("SELECT 1 AS n", Duration::from_secs(1)).await;
            (result, handle.is_up(), handle.connection_errors())
        };
        let (slow, (fast, up, errors)) = tokio::join!(slow, fast);
        (slow, fast, up, errors)
    });
    assert!(slow.is_ok(), "{slow:?}");
    let error = fast.expect_err("the pool's only connection is busy");
    assert!(
        error.to_string().contains("no free connection within 1s"),
        "{error}"
    );
    assert!(up_meanwhile, "the database answered; it is up");
    assert_eq!(errors_meanwhile, 0, "no connection attempt failed");
    let next = runtime.block_on(handle.query("SELECT 1 AS n", Duration::from_secs(5)));
    assert!(next.is_ok(), "{next:?}");
    assert_eq!(handle.connection_errors(), 0);
}
