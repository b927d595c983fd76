//! Business queries against a real PostgreSQL over TCP: type coercions (NUMERIC, INT8,
//! FLOAT, BOOL, DATE, TIMESTAMP, TIMESTAMPTZ, numeric text), NULLs, duplicates, the series
//! cap, Chinese labels, `statement_timeout` (the query is gone from `pg_stat_activity`),
//! and read-only transactions.

use std::time::{Duration, Instant};

use crate::support::db::{PASSWORD, Postgres, run};
use crate::support::exposition::{Exposition, labels};
use crate::support::{Lookout, http_get, poll_until};
use lookout::config::{Config, Sources, parse_str};
use lookout::exporter::sql::database::DatabaseHandle;

fn config(db: &Postgres, queries: &str) -> Config {
    config_with(db, "max_connections: 2", queries)
}

/// `pool` is more of the database's settings, e.g. `max_connections: 1`.
fn config_with(db: &Postgres, pool: &str, queries: &str) -> Config {
    let yaml = format!(
        "databases:\n  shop: {{ url: '{}', password: '{PASSWORD}', {pool} }}\nqueries:\n{queries}\n",
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
        let family = out.families().into_iter().find(|f| f.name == name).unwrap();
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
    let dec = out
        .families()
        .into_iter()
        .find(|f| f.name == "v_dec")
        .unwrap();
    assert_eq!(dec.samples[0].labels[0].1, "充值 \"引号\" \\ 换行\n");
    let small = out
        .families()
        .into_iter()
        .find(|f| f.name == "v_small")
        .unwrap();
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
    assert_eq!(dup.families()[0].samples[0].value, 1.0, "first kept");
    let cap = run(&c, 1).unwrap();
    // Reading stops at the first row beyond the cap.
    assert_eq!((cap.series, cap.dropped, cap.rows_read), (1, 1, 2));
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

#[test]
fn zero_rows_are_a_success_with_no_series() {
    let Some(db) = Postgres::create() else { return };
    db.exec("CREATE TABLE orders (status text, n int)");
    let c = config(
        &db,
        "  - { name: empty, database: shop, sql: 'SELECT status, n FROM orders', metrics: [{ name: orders_n, labels: [status], value: n }] }\n",
    );
    let out = run(&c, 0).unwrap_or_else(|e| panic!("an empty result is not a failure: {e}"));
    assert_eq!(out.series, 0);
    assert_eq!(out.families().len(), 1);
    assert!(out.families()[0].samples.is_empty());
}

#[test]
fn zero_rows_are_a_success_end_to_end() {
    let Some(db) = Postgres::create() else { return };
    db.exec("CREATE TABLE orders (status text, n int)");
    let yaml = format!(
        "host: {{ enabled: false }}
databases:
  shop: {{ url: '{}', password: '{PASSWORD}' }}
queries:
  - {{ name: empty, database: shop, interval: 1s, sql: 'SELECT status, n FROM orders', metrics: [{{ name: orders_n, labels: [status], value: n }}] }}
",
        db.url()
    );
    let lookout = Lookout::start(&yaml);
    let query = labels(&[("query", "empty")]);
    poll_until(
        Duration::from_secs(15),
        "two runs of the empty query",
        || {
            let body = http_get(&lookout.url("/metrics"), &[])
                .expect("scrape")
                .text();
            let m = Exposition::parse(&body).expect("valid exposition");
            match (
                m.value("lookout_query_runs_total", &query),
                m.value("lookout_query_success", &query),
                m.value("lookout_query_errors_total", &query),
            ) {
                (Some(runs), Some(1.0), Some(0.0)) if runs >= 2.0 => Ok(()),
                other => Err(format!("{other:?}\n{}", lookout.logs())),
            }
        },
    );
}

#[test]
fn non_text_label_columns_carry_their_text() {
    let Some(db) = Postgres::create() else { return };
    db.exec(
        "CREATE TYPE mood AS ENUM ('happy', '开心');
         CREATE DOMAIN code AS text;
         CREATE DOMAIN qty AS int;
         CREATE EXTENSION IF NOT EXISTS citext;",
    );
    let columns = [
        ("e", "'happy'::mood", "happy"),
        ("e2", "'开心'::mood", "开心"),
        (
            "u",
            "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ),
        ("ip", "'192.168.1.5/24'::inet", "192.168.1.5/24"),
        ("ip2", "'10.1.2.3'::inet", "10.1.2.3"),
        ("ip6", "'2001:db8::1'::inet", "2001:db8::1"),
        ("net", "'10.0.0.0/8'::cidr", "10.0.0.0/8"),
        ("mac", "'08:00:2b:01:02:03'::macaddr", "08:00:2b:01:02:03"),
        ("day", "DATE '2024-01-31'", "2024-01-31"),
        (
            "at",
            "TIMESTAMP '2023-11-14 22:13:20'",
            "2023-11-14 22:13:20",
        ),
        (
            "tz",
            "TIMESTAMPTZ '2023-11-15 06:13:20+08'",
            "2023-11-14 22:13:20",
        ),
        ("t", "TIME '08:30:05'", "08:30:05"),
        ("dec", "12.50::numeric(10,2)", "12.50"),
        ("neg", "-0.0042::numeric", "-0.0042"),
        (
            "huge",
            "123456789012345678901234567890123::numeric",
            "123456789012345678901234567890123",
        ),
        ("nan", "'NaN'::numeric", "NaN"),
        ("b", "true", "true"),
        ("ci", "'Mixed'::citext", "Mixed"),
        ("dom", "'X'::code", "X"),
        ("ch", "'ab'::char(4)", "ab  "),
        ("nm", "'pg_class'::name", "pg_class"),
        ("jb", "'{\"a\":1}'::jsonb", "{\"a\": 1}"),
        ("js", "'{\"a\":1}'::json", "{\"a\":1}"),
        ("q", "5::qty", "5"),
    ];
    let select = columns
        .iter()
        .map(|(name, expr, _)| format!("{expr} AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let metrics: String = columns
        .iter()
        .map(|(name, _, _)| format!("      - {{ name: l_{name}, labels: [{name}], value: n }}\n"))
        .collect();
    let c = config(
        &db,
        &format!(
            "  - name: labels
    database: shop
    sql: \"SELECT {}, 1 AS n, 123456789012345678901234567890123::numeric AS big_v, 5::qty AS q_v\"
    metrics:
{metrics}      - {{ name: v_big, value: big_v }}
      - {{ name: v_q, value: q_v }}
",
            select.replace('"', "\\\"")
        ),
    );
    let out = run(&c, 0).unwrap();
    let mut wrong = Vec::new();
    for (name, expr, want) in columns {
        let family = out
            .families()
            .into_iter()
            .find(|f| f.name == format!("l_{name}"))
            .unwrap();
        let got = family.samples[0].labels[0].1.as_str();
        if got != want {
            wrong.push(format!("{expr}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "label values:\n{}", wrong.join("\n"));
    let value = |name: &str| {
        let family = out.families().into_iter().find(|f| f.name == name).unwrap();
        family.samples.first().map(|s| s.value)
    };
    assert_eq!(
        value("v_big"),
        Some(1.2345678901234568e32),
        "NUMERIC beyond 28 digits"
    );
    assert_eq!(value("v_q"), Some(5.0), "a domain over int is a number");
}

/// A handle on the test database with a pool of `max` connections.
fn handle(db: &Postgres, max: u32) -> (tokio::runtime::Runtime, DatabaseHandle) {
    let c = config_with(
        db,
        &format!("max_connections: {max}, connect_timeout: 2s"),
        "  []",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.block_on(async { DatabaseHandle::new("shop", &c.databases["shop"]) });
    (runtime, handle)
}

#[test]
fn a_query_cannot_make_later_runs_writable() {
    let Some(db) = Postgres::create() else { return };
    db.exec("CREATE TABLE w (n int)");
    let (runtime, handle) = handle(&db, 1);
    let t = Duration::from_secs(5);
    let (multi, insert) = runtime.block_on(async {
        // One connection: every run below shares the session the previous one left.
        let multi = handle
            .query(
                "SET SESSION default_transaction_read_only = off; INSERT INTO w VALUES (1)",
                t,
            )
            .await;
        for attack in [
            "SET SESSION default_transaction_read_only = off",
            "SELECT set_config('default_transaction_read_only', 'off', false) AS s",
            "BEGIN READ WRITE",
        ] {
            let _ = handle.query(attack, t).await;
        }
        let insert = handle
            .query("INSERT INTO w VALUES (2) RETURNING n", t)
            .await;
        let _ = handle.query("COMMIT", t).await;
        handle.close().await;
        (multi, insert)
    });
    let multi = multi.unwrap_err().to_string();
    assert!(multi.contains("multiple commands"), "{multi}");
    let insert = insert.unwrap_err().to_string();
    assert!(insert.contains("read-only transaction"), "{insert}");
    assert_eq!(
        db.column("SELECT COUNT(*) FROM w"),
        vec![Some("0".to_owned())]
    );
}

#[test]
fn waiting_for_a_busy_pool_is_not_an_outage() {
    let Some(db) = Postgres::create() else { return };
    let (runtime, handle) = handle(&db, 1);
    crate::support::db::check_busy_pool_is_not_an_outage(
        &runtime,
        &handle,
        "SELECT pg_sleep(3) IS NULL AS s",
    );
    runtime.block_on(handle.close());
}

#[test]
fn reading_stops_at_max_series() {
    let Some(db) = Postgres::create() else { return };
    let c = config(
        &db,
        "  - { name: big, database: shop, max_series: 10, sql: 'SELECT g AS id, g AS n FROM generate_series(1, 200000) AS g', metrics: [{ name: big_n, labels: [id], value: n }] }\n",
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
fn a_batch_runs_read_only_and_goes_on_after_a_failing_statement() {
    let Some(db) = Postgres::create() else { return };
    db.exec("CREATE TABLE b (n int); INSERT INTO b VALUES (7)");
    let (runtime, handle) = handle(&db, 1);
    let results = runtime.block_on(async {
        let results = handle
            .query_each(
                &[
                    "SELECT n FROM b",
                    "SELECT * FROM no_such_table",
                    "INSERT INTO b VALUES (8) RETURNING n",
                    "SELECT current_setting('transaction_read_only') AS ro, count(*) AS c FROM b",
                ],
                Duration::from_secs(5),
            )
            .await
            .expect("the batch runs");
        handle.close().await;
        results
    });
    assert_eq!(results.len(), 4);
    let first = results[0].as_ref().expect("first statement");
    assert_eq!(first.rows.len(), 1);
    let missing = results[1].as_ref().unwrap_err().to_string();
    assert!(missing.contains("no_such_table"), "{missing}");
    // The failure aborted its transaction: the rest ran in a new one, read-only too.
    let insert = results[2].as_ref().unwrap_err().to_string();
    assert!(insert.contains("read-only transaction"), "{insert}");
    let last = results[3].as_ref().expect("last statement");
    assert_eq!(last.columns, ["ro", "c"]);
    assert_eq!(
        db.column("SELECT COUNT(*) FROM b"),
        vec![Some("1".to_owned())]
    );
}
