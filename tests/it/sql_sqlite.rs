//! Business queries against SQLite files: exactly one statement per query, read-only
//! connections that a query cannot switch back, reading that stops at `max_series`, and
//! a bounded wait for a free connection that is not an outage.

use std::path::Path;
use std::time::Duration;

use crate::support::db::run;
use lookout::config::{Config, Sources, parse_str};
use lookout::exporter::sql::database::DatabaseHandle;

/// A database file with table `w (n INTEGER)`, in rollback-journal mode (so a writer's
/// exclusive lock keeps readers out).
fn database(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("shop.db");
    let conn = rusqlite::Connection::open(&path).expect("create the database");
    conn.execute_batch("CREATE TABLE w (n INTEGER); INSERT INTO w VALUES (1);")
        .expect("create table w");
    path
}

fn config(path: &Path, max_connections: u32, queries: &str) -> Config {
    let yaml = format!(
        "databases:\n  shop: {{ url: 'sqlite://{}', max_connections: {max_connections} }}\nqueries:\n{queries}\n",
        path.display()
    );
    parse_str("test.yaml", &yaml, &Sources::system()).unwrap_or_else(|e| panic!("{e}"))
}

fn rows_in_w(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row("SELECT COUNT(*) FROM w", [], |row| row.get(0))
        .expect("count")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_query_is_exactly_one_statement() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let c = config(
        &path,
        1,
        "  - { name: attack, database: shop, sql: 'PRAGMA query_only = 0; INSERT INTO w VALUES (2)', metrics: [{ name: w_v, value: n }] }",
    );
    let error = run(&c, 0).unwrap_err().to_string();
    assert!(error.contains("exactly one statement"), "{error}");
    assert_eq!(rows_in_w(&path), 1);
}

#[test]
fn a_query_cannot_make_later_runs_writable() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let c = config(&path, 1, "  []");
    let t = Duration::from_secs(5);
    let runtime = runtime();
    let insert = runtime.block_on(async {
        let handle = DatabaseHandle::new("shop", &c.databases["shop"]);
        let _ = handle.query("PRAGMA query_only = 0", t).await;
        let insert = handle.query("INSERT INTO w VALUES (2)", t).await;
        handle.close().await;
        insert
    });
    assert!(insert.is_err(), "{insert:?}");
    assert_eq!(rows_in_w(&path), 1);
}

#[test]
fn reading_stops_at_max_series() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let c = config(
        &path,
        1,
        "  - { name: big, database: shop, max_series: 10, sql: 'WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 200000) SELECT x AS id, x AS n FROM s', metrics: [{ name: big_n, labels: [id], value: n }] }",
    );
    let out = run(&c, 0).unwrap();
    assert_eq!(out.series, 10);
    assert_eq!(out.dropped, 1);
    assert_eq!(out.rows_read, 11);
}

#[test]
fn waiting_for_a_busy_connection_is_not_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let c = config(&path, 1, "  []");
    // A writer holds an exclusive lock for 2.5 s: the first query waits for it on the
    // only connection (busy_timeout), the second waits for that connection.
    let writer = rusqlite::Connection::open(&path).unwrap();
    let runtime = runtime();
    let (slow, fast, up, errors) = runtime.block_on(async {
        let handle = DatabaseHandle::new("shop", &c.databases["shop"]);
        let first = handle.query("SELECT 1 AS n", Duration::from_secs(5)).await;
        assert!(first.is_ok() && handle.is_up(), "{first:?}");
        writer.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let slow = handle.query("SELECT n FROM w", Duration::from_secs(10));
        let fast = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let result = handle.query("SELECT 1 AS n", Duration::from_secs(1)).await;
            (result, handle.is_up(), handle.connection_errors())
        };
        let release = async {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            writer.execute_batch("ROLLBACK").unwrap();
        };
        let (slow, (fast, up, errors), ()) = tokio::join!(slow, fast, release);
        handle.close().await;
        (slow, fast, up, errors)
    });
    assert!(slow.is_ok(), "{slow:?}");
    let error = fast.unwrap_err().to_string();
    assert!(error.contains("no free connection within 1s"), "{error}");
    assert!(
        up,
        "waiting for a connection says nothing about the database"
    );
    assert_eq!(errors, 0, "a busy pool counts no connection error");
}
