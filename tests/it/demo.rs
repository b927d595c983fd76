//! `lookout demo` and the shop examples: the seeded SQLite database (size, speed, reuse),
//! the built-in configuration (valid, every query answers with rows, quickly, through
//! lookout's own SQL layer), the activity simulator (writes while the exporter reads,
//! bursts, stops when told), and `examples/shop/` loaded into a real MariaDB and
//! PostgreSQL with every example query run against it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::db::{MariaDb, PASSWORD, Postgres, run};
use lookout::config::{Config, Sources, parse_str};
use lookout::demo::{self, SimulatorSettings};
use lookout::shutdown::Shutdown;
use rusqlite::{Connection, OpenFlags};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop")
}

fn prepared() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let path = demo::prepare(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("seeded the demo database in {:.2?}", started.elapsed());
    (dir, path)
}

fn read_only(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open read-only");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn demo_config(path: &Path) -> Config {
    let yaml = demo::config_yaml(path);
    parse_str("demo.yaml", &yaml, &Sources::system()).unwrap_or_else(|e| panic!("{e}"))
}

/// Metric name → sorted label names, over every query.
fn metric_shapes(config: &Config) -> BTreeMap<String, Vec<String>> {
    config
        .queries
        .iter()
        .flat_map(|q| &q.metrics)
        .map(|m| {
            let mut labels = m.labels.clone();
            labels.sort();
            (m.name.clone(), labels)
        })
        .collect()
}

/// Runs every query of `config` through lookout's own database layer; each must produce
/// at least one sample for every metric it defines.
fn every_query_has_samples(config: &Config) {
    for (i, query) in config.queries.iter().enumerate() {
        let conversion = run(config, i).unwrap_or_else(|e| panic!("query {}: {e}", query.name));
        for family in &conversion.families() {
            assert!(
                !family.samples.is_empty(),
                "query {} gave no sample for {}",
                query.name,
                family.name
            );
        }
        assert_eq!(conversion.unparsable, 0, "query {}", query.name);
        assert_eq!(conversion.duplicates, 0, "query {}", query.name);
    }
}

#[test]
fn prepare_seeds_a_realistic_database() {
    let started = Instant::now();
    let (_dir, path) = prepared();
    let seeding = started.elapsed();
    assert!(path.is_absolute(), "{}", path.display());
    assert!(path.ends_with("demo/shop.db"), "{}", path.display());
    let conn = read_only(&path);
    let transactions = count(&conn, "SELECT COUNT(*) FROM transactions");
    assert!(transactions >= 100_000, "{transactions} transactions");
    let span_days = count(
        &conn,
        "SELECT (MAX(created_at) - MIN(created_at)) / 86400 FROM transactions",
    );
    assert!((29..=30).contains(&span_days), "{span_days} days");
    for (table, at_least) in [
        ("users", 10_000),
        ("wallets", 10_000),
        ("products", 100),
        ("orders", 10_000),
        ("payments", 10_000),
        ("group_buys", 1_000),
        ("login_attempts", 10_000),
        ("access_log", 10_000),
    ] {
        let n = count(&conn, &format!("SELECT COUNT(*) FROM {table}"));
        assert!(n >= at_least, "{table}: {n} rows");
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    // Nothing left behind from building it.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("a parent"))
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("building"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    eprintln!("{transactions} transactions; prepare took {seeding:.2?}");
    assert!(
        seeding < Duration::from_secs(30),
        "seeding took {seeding:?}"
    );
}

#[test]
fn prepare_reuses_the_database_and_rebuilds_an_outdated_one() {
    let (dir, path) = prepared();
    let marker = |conn: &Connection| {
        count(
            conn,
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'reuse_marker'",
        )
    };
    Connection::open(&path)
        .expect("open")
        .execute_batch("CREATE TABLE reuse_marker (x)")
        .expect("mark");

    let started = Instant::now();
    let again = demo::prepare(dir.path()).expect("prepare again");
    let reuse = started.elapsed();
    assert_eq!(again, path);
    assert_eq!(marker(&read_only(&path)), 1, "the database was rebuilt");
    eprintln!("reusing the demo database took {reuse:.2?}");

    // An older schema version is rebuilt.
    Connection::open(&path)
        .expect("open")
        .pragma_update(None, "user_version", 0)
        .expect("downgrade");
    let rebuilt = demo::prepare(dir.path()).expect("prepare an outdated one");
    assert_eq!(rebuilt, path);
    let conn = read_only(&path);
    assert_eq!(marker(&conn), 0, "the outdated database was kept");
    assert!(count(&conn, "PRAGMA user_version") >= 1);
}

#[test]
fn the_demo_config_validates_and_every_query_returns_rows() {
    let (_dir, path) = prepared();
    let config = demo_config(&path);
    assert!(config.host.enabled);
    let shop = &config.databases["shop"];
    assert_eq!(shop.kind, lookout::config::DatabaseKind::Sqlite);
    assert_eq!(shop.url, format!("sqlite://{}", path.display()));
    assert!(
        config.queries.len() >= 12,
        "{} queries",
        config.queries.len()
    );
    for query in &config.queries {
        assert!(
            (Duration::from_secs(10)..=Duration::from_secs(30)).contains(&query.interval),
            "{}: {:?}",
            query.name,
            query.interval
        );
        for metric in &query.metrics {
            assert!(metric.name.starts_with("shop_"), "{}", metric.name);
        }
    }
    assert!(matches!(
        config.channels["console"].kind,
        lookout::channel::Kind::Console(_)
    ));
    for receiver in ["critical", "warning", "info"] {
        assert_eq!(
            config.receivers[receiver].channels,
            ["console"],
            "{receiver}"
        );
    }

    every_query_has_samples(&config);

    // All queries together, on one connection, best of five rounds.
    let conn = read_only(&path);
    let mut best = Duration::MAX;
    let mut slowest: Vec<(Duration, &str)> = Vec::new();
    for _ in 0..5 {
        let round = Instant::now();
        let mut each = Vec::new();
        for query in &config.queries {
            let started = Instant::now();
            let mut statement = conn.prepare(&query.sql).expect("prepare");
            let mut rows = statement.query([]).expect("query");
            let mut n = 0;
            while rows.next().expect("row").is_some() {
                n += 1;
            }
            assert!(n >= 1, "{} returned no row", query.name);
            each.push((started.elapsed(), query.name.as_str()));
        }
        let took = round.elapsed();
        if took < best {
            best = took;
            slowest = each;
        }
    }
    slowest.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    eprintln!(
        "all {} demo queries: {best:.2?} (slowest: {:?})",
        config.queries.len(),
        slowest.iter().take(3).collect::<Vec<_>>()
    );
}

#[test]
fn the_simulator_writes_while_queries_read_and_stops_when_told() {
    let (_dir, path) = prepared();
    let config = demo_config(&path);
    let conn = read_only(&path);
    let before = |sql: &str| count(&conn, sql);
    let tables = [
        "transactions",
        "orders",
        "payments",
        "login_attempts",
        "access_log",
    ];
    let counts: Vec<i64> = tables
        .iter()
        .map(|t| before(&format!("SELECT COUNT(*) FROM {t}")))
        .collect();
    let max_id = before("SELECT MAX(id) FROM transactions");
    let max_login = before("SELECT MAX(id) FROM login_attempts");

    let stop = Shutdown::new();
    let settings = SimulatorSettings {
        tick: Duration::from_millis(50),
        burst_every: Some(Duration::from_millis(300)),
        burst_duration: Duration::from_secs(1),
        seed: Some(7),
    };
    let simulator = demo::spawn_simulator_with(path.clone(), settings, stop.clone());

    // The exporter's read-only queries keep working while the simulator writes.
    let until = Instant::now() + Duration::from_secs(3);
    let mut rounds = 0;
    while Instant::now() < until {
        for query in &config.queries {
            let mut statement = conn.prepare(&query.sql).expect("prepare");
            let mut rows = statement
                .query([])
                .unwrap_or_else(|e| panic!("{}: {e}", query.name));
            while rows
                .next()
                .unwrap_or_else(|e| panic!("{}: {e}", query.name))
                .is_some()
            {}
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!simulator.is_finished(), "the simulator stopped on its own");

    stop.trigger();
    let stopping = Instant::now();
    while !simulator.is_finished() && stopping.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = stopping.elapsed();
    assert!(simulator.is_finished(), "still running {took:?} after stop");
    simulator.join().expect("the simulator did not panic");
    eprintln!("simulator stopped {took:.2?} after the signal; {rounds} query rounds meanwhile");
    assert!(took < Duration::from_millis(500), "stopping took {took:?}");

    for (table, before) in tables.iter().zip(counts) {
        let after = count(&conn, &format!("SELECT COUNT(*) FROM {table}"));
        assert!(after > before, "{table}: {before} → {after}");
    }
    // The bursts: failures, then large transactions, then a login flood.
    let failed = count(
        &conn,
        &format!("SELECT COUNT(*) FROM transactions WHERE id > {max_id} AND status = 'failed'"),
    );
    assert!(failed >= 20, "{failed} failed transactions");
    let large = count(
        &conn,
        &format!("SELECT COUNT(*) FROM transactions WHERE id > {max_id} AND amount > 50000"),
    );
    assert!(large >= 1, "no large transaction");
    let flood = count(
        &conn,
        &format!(
            "SELECT COUNT(*) FROM login_attempts WHERE id > {max_login} AND ip LIKE '203.0.113.%'"
        ),
    );
    assert!(flood >= 10, "{flood} flood login attempts");
    // Money never goes negative.
    let negative = count(
        &conn,
        "SELECT COUNT(*) FROM wallets WHERE balance < 0 OR frozen_balance < 0",
    );
    assert_eq!(negative, 0);
}

fn example_config(yaml: &str) -> Config {
    let env = |name: &str| (name == "SHOP_DB_PASSWORD").then(|| PASSWORD.to_owned());
    let sources = Sources {
        env: &env,
        read_file: &|path| std::fs::read_to_string(path),
    };
    parse_str("examples/shop/lookout.yaml", yaml, &sources).unwrap_or_else(|e| panic!("{e}"))
}

fn read_example(name: &str) -> String {
    std::fs::read_to_string(examples().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_example_configs_validate_and_match_the_demo() {
    let demo = demo_config(Path::new("/nonexistent/shop.db"));
    for name in ["lookout.yaml", "lookout-postgres.yaml"] {
        let config = example_config(&read_example(name));
        let shop = &config.databases["shop"];
        assert_eq!(
            shop.password.as_ref().map(|p| p.expose().to_owned()),
            Some(PASSWORD.to_owned()),
            "{name}"
        );
        assert_eq!(
            metric_shapes(&config),
            metric_shapes(&demo),
            "{name} and the demo expose different metrics"
        );
        let names = |c: &Config| c.queries.iter().map(|q| q.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&config), names(&demo), "{name}");
    }
}

/// `mysql.sql` without the two lines that create and select the `shop` database.
fn mysql_schema() -> String {
    read_example("mysql.sql")
        .lines()
        .filter(|line| !line.starts_with("CREATE DATABASE") && !line.starts_with("USE "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_queries_run_on_mariadb() {
    let Some(db) = MariaDb::create() else { return };
    let started = Instant::now();
    db.exec(&mysql_schema());
    eprintln!("loaded mysql.sql in {:.2?}", started.elapsed());
    let transactions = db.column("SELECT COUNT(*) FROM transactions");
    let n: i64 = transactions[0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("a count");
    assert!(n >= 100_000, "{n} transactions");
    let yaml =
        read_example("lookout.yaml").replace("mysql://lookout@127.0.0.1:3306/shop", &db.url());
    let config = example_config(&yaml);
    every_query_has_samples(&config);
}

#[test]
fn the_example_queries_run_on_postgres() {
    let Some(db) = Postgres::create() else { return };
    let started = Instant::now();
    db.exec(&read_example("postgres.sql"));
    eprintln!("loaded postgres.sql in {:.2?}", started.elapsed());
    let transactions = db.column("SELECT COUNT(*) FROM transactions");
    let n: i64 = transactions[0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("a count");
    assert!(n >= 100_000, "{n} transactions");
    let yaml = read_example("lookout-postgres.yaml")
        .replace("postgres://lookout@127.0.0.1:5432/shop", &db.url());
    let config = example_config(&yaml);
    every_query_has_samples(&config);
}
