//! Business queries against a real MariaDB over TCP: every type coercion, NULLs,
//! duplicate label sets, the series cap, Chinese label values, the server-side statement
//! timeout (the query is gone from the process list), and read-only sessions.

use std::time::{Duration, Instant};

use crate::support::db::{MariaDb, PASSWORD, run};
use lookout::config::{Config, Sources, parse_str};
use lookout::exporter::family::Family;
use lookout::exporter::sql::Error;
use lookout::exporter::sql::database::DatabaseHandle;

fn config(db: &MariaDb, queries: &str) -> Config {
    let yaml = format!(
        "databases:\n  shop: {{ url: '{}', password: '{PASSWORD}', max_connections: 2 }}\nqueries:\n{queries}",
        db.url()
    );
    parse_str("test.yaml", &yaml, &Sources::system()).unwrap_or_else(|e| panic!("{e}"))
}

fn samples(family: &Family) -> Vec<(Vec<String>, f64)> {
    family
        .samples
        .iter()
        .map(|s| (s.labels.iter().map(|(_, v)| v.clone()).collect(), s.value))
        .collect()
}

#[test]
fn every_type_coerces() {
    let Some(db) = MariaDb::create() else { return };
    db.exec(
        "CREATE TABLE t (
            k VARCHAR(50), dec_v DECIMAL(20,4), big_u BIGINT UNSIGNED, f FLOAT, d DOUBLE, b BOOL,
            day DATE, at DATETIME(3), ts TIMESTAMP NULL, num_s VARCHAR(20), tiny TINYINT, n INT)",
    );
    db.exec(
        "INSERT INTO t VALUES
          ('充值 \"引号\" \\\\ 换行\\n', 12345.6789, 18446744073709551615, 1.5, 2.25, TRUE,
           '2024-01-31', '2023-11-14 22:13:20.500', '2023-11-14 22:13:20', ' 42 ', -3, NULL)",
    );
    let c = config(
        &db,
        "  - name: types
    database: shop
    sql: SELECT k, dec_v, big_u, f, d, b, day, at, ts, num_s, tiny, n FROM t
    metrics:
      - { name: v_dec, labels: [k], value: dec_v }
      - { name: v_big_u, labels: [k], value: big_u }
      - { name: v_f, labels: [k], value: f }
      - { name: v_d, labels: [k], value: d }
      - { name: v_b, labels: [k], value: b }
      - { name: v_day, labels: [k], value: day }
      - { name: v_at, labels: [k], value: at }
      - { name: v_ts, labels: [k], value: ts }
      - { name: v_num_s, labels: [k], value: num_s }
      - { name: v_tiny, labels: [k], value: tiny }
      - { name: v_null, labels: [k], value: n }
      - { name: v_by_day, labels: [day], value: tiny }
",
    );
    let out = run(&c, 0).unwrap();
    let value = |name: &str| {
        let family = out.families().into_iter().find(|f| f.name == name).unwrap();
        family.samples.first().map(|s| s.value)
    };
    assert_eq!(value("v_dec"), Some(12345.6789));
    assert_eq!(value("v_big_u"), Some(18446744073709551615.0));
    assert_eq!(out.lossy, 1, "BIGINT UNSIGNED beyond 2^53 is flagged");
    assert_eq!(value("v_f"), Some(1.5));
    assert_eq!(value("v_d"), Some(2.25));
    assert_eq!(value("v_b"), Some(1.0));
    assert_eq!(value("v_day"), Some(1_706_659_200.0));
    assert_eq!(value("v_at"), Some(1_700_000_000.5));
    assert_eq!(
        value("v_ts"),
        Some(1_700_000_000.0),
        "TIMESTAMP read in UTC"
    );
    assert_eq!(value("v_num_s"), Some(42.0));
    assert_eq!(value("v_tiny"), Some(-3.0));
    assert_eq!(value("v_null"), None, "NULL skips the sample");
    assert_eq!(out.nulls, 1);
    let dec = out
        .families()
        .into_iter()
        .find(|f| f.name == "v_dec")
        .unwrap();
    assert_eq!(
        samples(&dec)[0].0,
        vec!["充值 \"引号\" \\ 换行\n".to_owned()],
        "label kept verbatim"
    );
    let by_day = out
        .families()
        .into_iter()
        .find(|f| f.name == "v_by_day")
        .unwrap();
    assert_eq!(samples(&by_day)[0].0, vec!["2024-01-31".to_owned()]);
}

#[test]
fn duplicates_and_the_series_cap_are_counted_not_fatal() {
    let Some(db) = MariaDb::create() else { return };
    db.exec("CREATE TABLE o (status VARCHAR(20), n INT)");
    db.exec("INSERT INTO o VALUES ('paid', 1), ('paid', 2), ('open', 3), ('void', 4), ('lost', 5)");
    let c = config(
        &db,
        "  - { name: dup, database: shop, sql: 'SELECT status, n FROM o ORDER BY n', metrics: [{ name: orders, labels: [status], value: n }] }
  - { name: cap, database: shop, max_series: 2, sql: 'SELECT status, n FROM o ORDER BY n', metrics: [{ name: orders_capped, labels: [status], value: n }] }
",
    );
    let dup = run(&c, 0).unwrap();
    assert_eq!(dup.duplicates, 1);
    assert_eq!(
        samples(&dup.families()[0])[0],
        (vec!["paid".to_owned()], 1.0),
        "first kept"
    );
    assert_eq!(dup.families()[0].samples.len(), 4);
    let cap = run(&c, 1).unwrap();
    // Reading stops at the first row beyond the cap.
    assert_eq!((cap.series, cap.dropped, cap.rows_read), (2, 1, 4));
}

#[test]
fn a_slow_query_is_cancelled_on_the_server() {
    let Some(db) = MariaDb::create() else { return };
    let c = config(
        &db,
        "  - { name: slow, database: shop, interval: 10s, timeout: 1s, sql: 'SELECT SLEEP(5) AS s', metrics: [{ name: slow_v, value: s }] }\n",
    );
    let started = Instant::now();
    let result = run(&c, 0);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3500), "client waited {took:?}");
    // MariaDB either aborts the statement (error 1969) or interrupts SLEEP, which then
    // returns 1 early; both prove the server gave up after the timeout.
    match result {
        Err(error) => assert!(
            error.to_string().contains("max_statement_time") || matches!(error, Error::Timeout(_)),
            "{error}"
        ),
        Ok(out) => assert_eq!(out.families()[0].samples[0].value, 1.0, "SLEEP interrupted"),
    }
    let still_running = db.column(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(5)%'",
    );
    assert_eq!(
        still_running,
        vec![Some("0".to_owned())],
        "the query must be gone from the process list"
    );
}

#[test]
fn writes_fail_and_change_nothing() {
    let Some(db) = MariaDb::create() else { return };
    db.exec("CREATE TABLE w (n INT)");
    let c = config(
        &db,
        "  - { name: write, database: shop, sql: 'INSERT INTO w VALUES (1)', metrics: [{ name: w_v, value: n }] }\n",
    );
    let error = run(&c, 0).unwrap_err();
    assert!(error.to_string().contains("READ ONLY"), "{error}");
    assert_eq!(
        db.column("SELECT COUNT(*) FROM w"),
        vec![Some("0".to_owned())]
    );
}

#[test]
fn a_pooled_connection_stays_read_only_across_runs() {
    let Some(db) = MariaDb::create() else { return };
    db.exec("CREATE TABLE w (n INT)");
    let c = config(
        &db,
        "  - { name: q, database: shop, sql: 'SELECT 1 AS n', metrics: [{ name: q_v, value: n }] }\n",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime.block_on(async {
        let handle =
            lookout::exporter::sql::database::DatabaseHandle::new("shop", &c.databases["shop"]);
        for _ in 0..3 {
            handle
                .query("SELECT 1 AS n", Duration::from_secs(5))
                .await
                .unwrap();
        }
        let error = handle
            .query("INSERT INTO w VALUES (1)", Duration::from_secs(5))
            .await
            .unwrap_err();
        handle.close().await;
        error
    });
    assert!(error.to_string().contains("READ ONLY"), "{error}");
    assert_eq!(
        db.column("SELECT COUNT(*) FROM w"),
        vec![Some("0".to_owned())]
    );
}

/// A handle on the test database with a pool of `max` connections.
fn handle(db: &MariaDb, max: u32) -> (tokio::runtime::Runtime, DatabaseHandle) {
    let yaml = format!(
        "databases:\n  shop: {{ url: '{}', password: '{PASSWORD}', max_connections: {max}, connect_timeout: 2s }}\nqueries: []\n",
        db.url()
    );
    let c = parse_str("test.yaml", &yaml, &Sources::system()).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.block_on(async { DatabaseHandle::new("shop", &c.databases["shop"]) });
    (runtime, handle)
}

#[test]
fn non_text_label_columns_carry_their_text() {
    let Some(db) = MariaDb::create() else { return };
    db.exec(
        "CREATE TABLE l (e ENUM('paid', '已付'), s SET('a', 'b', 'c'), day DATE, at DATETIME,
            dec_v DECIMAL(10,2), b BOOL, t TIME, y YEAR, u BIGINT UNSIGNED, bin VARBINARY(8), n INT)",
    );
    db.exec(
        "INSERT INTO l VALUES ('已付', 'a,c', '2024-01-31', '2023-11-14 22:13:20', 12.50, TRUE,
            '08:30:05', 2024, 18446744073709551615, 'raw', 1)",
    );
    let columns = [
        ("e", "已付"),
        ("s", "a,c"),
        ("day", "2024-01-31"),
        ("at", "2023-11-14 22:13:20"),
        ("dec_v", "12.50"),
        ("b", "1"),
        ("y", "2024"),
        ("u", "18446744073709551615"),
        ("bin", "raw"),
    ];
    let metrics: String = columns
        .iter()
        .map(|(name, _)| format!("      - {{ name: l_{name}, labels: [{name}], value: n }}\n"))
        .collect();
    let c = config(
        &db,
        &format!(
            "  - name: labels\n    database: shop\n    sql: SELECT * FROM l\n    metrics:\n{metrics}"
        ),
    );
    let out = run(&c, 0).unwrap();
    let mut wrong = Vec::new();
    for (name, want) in columns {
        let family = out
            .families()
            .into_iter()
            .find(|f| f.name == format!("l_{name}"))
            .unwrap();
        let got = family.samples[0].labels[0].1.as_str();
        if got != want {
            wrong.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "label values:\n{}", wrong.join("\n"));
}

#[test]
fn the_query_cannot_switch_read_only_off() {
    let Some(db) = MariaDb::create() else { return };
    db.exec("CREATE TABLE w (n INT)");
    let c = config(
        &db,
        "  - { name: attack, database: shop, sql: 'SET SESSION TRANSACTION READ WRITE; INSERT INTO w VALUES (1)', metrics: [{ name: w_v, value: n }] }\n",
    );
    let error = run(&c, 0).unwrap_err();
    assert!(matches!(error, Error::Query(_)), "{error:?}");
    assert!(
        error.to_string().contains("one statement"),
        "the error says why: {error}"
    );
    assert_eq!(
        db.column("SELECT COUNT(*) FROM w"),
        vec![Some("0".to_owned())]
    );
}

#[test]
fn a_query_cannot_make_later_runs_writable() {
    let Some(db) = MariaDb::create() else { return };
    db.exec("CREATE TABLE w (n INT)");
    let (runtime, handle) = handle(&db, 1);
    let t = Duration::from_secs(5);
    let inserts = runtime.block_on(async {
        // One connection: every run below shares the session the previous one left.
        let mut inserts = Vec::new();
        for attack in [
            "SET SESSION TRANSACTION READ WRITE",
            "SET SESSION tx_read_only = 0",
            "START TRANSACTION READ WRITE",
            "SET autocommit = 0",
        ] {
            let _ = handle.query(attack, t).await;
            inserts.push(handle.query("INSERT INTO w VALUES (1)", t).await);
            let _ = handle.query("COMMIT", t).await;
        }
        handle.close().await;
        inserts
    });
    for insert in inserts {
        assert!(insert.is_err(), "{insert:?}");
    }
    assert_eq!(
        db.column("SELECT COUNT(*) FROM w"),
        vec![Some("0".to_owned())]
    );
}

#[test]
fn waiting_for_a_busy_pool_is_not_an_outage() {
    let Some(db) = MariaDb::create() else { return };
    let (runtime, handle) = handle(&db, 1);
    crate::support::db::check_busy_pool_is_not_an_outage(&runtime, &handle, "SELECT SLEEP(3) AS s");
    runtime.block_on(handle.close());
}

#[test]
fn reading_stops_at_max_series() {
    let Some(db) = MariaDb::create() else { return };
    let c = config(
        &db,
        "  - { name: big, database: shop, max_series: 10, sql: 'SELECT seq AS id, seq AS n FROM seq_1_to_200000', metrics: [{ name: big_n, labels: [id], value: n }] }
  - { name: after, database: shop, sql: 'SELECT 1 AS n', metrics: [{ name: after_n, value: n }] }
",
    );
    let out = run(&c, 0).unwrap();
    assert_eq!(out.series, 10);
    assert!(out.dropped >= 1, "the cap was hit: {}", out.dropped);
    assert!(
        out.rows_read <= 11,
        "{} rows read for 10 series",
        out.rows_read
    );
}

#[test]
fn a_batch_shares_one_read_only_session_and_goes_on_after_a_failing_statement() {
    let Some(db) = MariaDb::create() else { return };
    db.exec("CREATE TABLE b (n INT); INSERT INTO b VALUES (7)");
    let (runtime, handle) = handle(&db, 1);
    let results = runtime.block_on(async {
        let results = handle
            .query_each(
                &[
                    "SELECT n FROM b",
                    "SELECT * FROM no_such_table",
                    "INSERT INTO b VALUES (8)",
                    "SELECT @@session.tx_read_only AS ro, CONNECTION_ID() AS id",
                    "SELECT CONNECTION_ID() AS id",
                ],
                Duration::from_secs(5),
            )
            .await
            .expect("the batch runs");
        handle.close().await;
        results
    });
    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().expect("first").rows.len(), 1);
    let missing = results[1].as_ref().unwrap_err().to_string();
    assert!(missing.contains("no_such_table"), "{missing}");
    let insert = results[2].as_ref().unwrap_err().to_string();
    assert!(insert.contains("READ ONLY"), "{insert}");
    let session = results[3].as_ref().expect("session");
    let again = results[4].as_ref().expect("again");
    assert_eq!(
        session.rows[0][1], again.rows[0][0],
        "one connection for the whole batch"
    );
    assert_eq!(
        db.column("SELECT COUNT(*) FROM b"),
        vec![Some("1".to_owned())]
    );
}
