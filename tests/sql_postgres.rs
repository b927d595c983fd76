//! Business queries against a real PostgreSQL over TCP: type coercions (NUMERIC, INT8,
//! FLOAT, BOOL, DATE, TIMESTAMP, TIMESTAMPTZ, numeric text), NULLs, duplicates, the series
//! cap, Chinese labels, `statement_timeout` (the query is gone from `pg_stat_activity`),
//! and read-only transactions.

mod support;

use std::time::{Duration, Instant};

use lookout::config::{Config, Sources, parse_str};
use support::db::{PASSWORD, Postgres, run};

fn config(db: &Postgres, queries: &str) -> Config {
    let yaml = format!(
        "databases:\n  shop: {{ url: '{}', password: '{PASSWORD}' }}\nqueries:\n{queries}",
        db.url()
    );
    parse_str("test.yaml", &yaml, &Sources::system()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_type_coerces() {
    let Some(db) = Postgres::create() else { return };
    let c = config(
        &db,
        "  - name: types
    database: shop
    sql: |
      SELECT '充值 \"引号\" \\ 换行' || chr(10) AS k, 12345.6789::numeric AS dec_v, 9007199254740993::int8 AS big,
             1.5::float4 AS f, 2.25::float8 AS d, true AS b, DATE '2024-01-31' AS day,
             TIMESTAMP '2023-11-14 22:13:20.5' AS at, TIMESTAMPTZ '2023-11-15 06:13:20+08' AS tz,
             ' 42 '::text AS num_s, NULL::int AS n, 7::int2 AS small
    metrics:
      - { name: v_dec, labels: [k], value: dec_v }
      - { name: v_big, labels: [k], value: big }
      - { name: v_f, labels: [k], value: f }
      - { name: v_d, labels: [k], value: d }
      - { name: v_b, labels: [k], value: b }
      - { name: v_day, labels: [k], value: day }
      - { name: v_at, labels: [k], value: at }
      - { name: v_tz, labels: [k], value: tz }
      - { name: v_num_s, labels: [k], value: num_s }
      - { name: v_null, labels: [k], value: n }
      - { name: v_small, labels: [day], value: small }
",
    );
    let out = run(&c, 0).unwrap();
    let value = |name: &str| {
        let family = out.families.iter().find(|f| f.name == name).unwrap();
        family.samples.first().map(|s| s.value)
    };
    assert_eq!(value("v_dec"), Some(12345.6789));
    assert_eq!(value("v_big"), Some(9007199254740992.0));
    assert_eq!(out.lossy, 1, "INT8 beyond 2^53 is flagged");
    assert_eq!(value("v_f"), Some(1.5));
    assert_eq!(value("v_d"), Some(2.25));
    assert_eq!(value("v_b"), Some(1.0));
    assert_eq!(value("v_day"), Some(1_706_659_200.0));
    assert_eq!(value("v_at"), Some(1_700_000_000.5));
    assert_eq!(value("v_tz"), Some(1_700_000_000.0));
    assert_eq!(value("v_num_s"), Some(42.0));
    assert_eq!(value("v_null"), None);
    assert_eq!(out.nulls, 1);
    let dec = out.families.iter().find(|f| f.name == "v_dec").unwrap();
    assert_eq!(dec.samples[0].labels[0].1, "充值 \"引号\" \\ 换行\n");
    let small = out.families.iter().find(|f| f.name == "v_small").unwrap();
    assert_eq!(small.samples[0].labels[0].1, "2024-01-31");
}

#[test]
fn duplicates_and_the_series_cap_are_counted_not_fatal() {
    let Some(db) = Postgres::create() else { return };
    let c = config(
        &db,
        "  - { name: dup, database: shop, sql: \"SELECT * FROM (VALUES ('paid', 1), ('paid', 2), ('open', 3)) AS o(status, n) ORDER BY n\", metrics: [{ name: orders, labels: [status], value: n }] }
  - { name: cap, database: shop, max_series: 1, sql: \"SELECT * FROM (VALUES ('a', 1), ('b', 2), ('c', 3)) AS o(status, n)\", metrics: [{ name: orders_capped, labels: [status], value: n }] }
",
    );
    let dup = run(&c, 0).unwrap();
    assert_eq!(dup.duplicates, 1);
    assert_eq!(dup.families[0].samples[0].value, 1.0, "first kept");
    let cap = run(&c, 1).unwrap();
    assert_eq!((cap.series, cap.dropped), (1, 2));
}

#[test]
fn a_slow_query_is_cancelled_on_the_server() {
    let Some(db) = Postgres::create() else { return };
    let c = config(
        &db,
        "  - { name: slow, database: shop, interval: 10s, timeout: 1s, sql: 'SELECT pg_sleep(5) IS NULL AS s', metrics: [{ name: slow_v, value: s }] }\n",
    );
    let started = Instant::now();
    let error = run(&c, 0).unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3500), "client waited {took:?}");
    assert!(error.to_string().contains("statement timeout"), "{error}");
    let still_running = db.column("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%' AND state = 'active'");
    assert_eq!(
        still_running,
        vec![Some("0".to_owned())],
        "the query must be gone from pg_stat_activity"
    );
}

#[test]
fn writes_fail_and_change_nothing() {
    let Some(db) = Postgres::create() else { return };
    db.exec("CREATE TABLE w (n int)");
    let c = config(
        &db,
        "  - { name: write, database: shop, sql: 'INSERT INTO w VALUES (1) RETURNING n', metrics: [{ name: w_v, value: n }] }\n",
    );
    let error = run(&c, 0).unwrap_err();
    assert!(
        error.to_string().contains("read-only transaction"),
        "{error}"
    );
    assert_eq!(
        db.column("SELECT COUNT(*) FROM w"),
        vec![Some("0".to_owned())]
    );
}
