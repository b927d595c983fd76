//! A database outage, end to end: lookout scrapes its own `mariadbd` (temp datadir, free
//! port), the server is killed with SIGKILL, and then restarted. `/metrics` must keep
//! answering fast, `lookout_database_up` must drop to 0, the query's series must vanish
//! after `stale_after`, reconnect attempts must stay bounded by the backoff, and values
//! must return after the restart without restarting lookout.

use std::time::{Duration, Instant};

use crate::support::exposition::{Exposition, labels};
use crate::support::servers::PrivateMariaDb;
use crate::support::{Lookout, http_get, poll_until};

/// Scrapes once; returns the parsed exposition and how long the scrape took.
fn scrape(lookout: &Lookout) -> (Exposition, Duration) {
    let started = Instant::now();
    let response = http_get(&lookout.url("/metrics"), &[]).expect("scrape");
    let took = started.elapsed();
    assert_eq!(response.status, 200);
    (
        Exposition::parse(&response.text()).expect("valid exposition"),
        took,
    )
}

#[test]
fn outage_then_recovery_without_restart() {
    let Some(mut db) = PrivateMariaDb::install(&["--skip-grant-tables".to_owned()]) else {
        return;
    };
    db.sql(
        "CREATE DATABASE outage; CREATE TABLE outage.t (v INT); INSERT INTO outage.t VALUES (7);",
    );
    // Two queries at 500 ms: without backoff they would try to connect ~4 times a second.
    let config = format!(
        "host: {{ enabled: false }}
databases:
  outage: {{ url: 'mysql://root@127.0.0.1:{port}/outage', connect_timeout: 1s }}
queries:
  - {{ name: a, database: outage, interval: 500ms, timeout: 500ms, stale_after: 3s, sql: 'SELECT v FROM t', metrics: [{{ name: outage_a, value: v }}] }}
  - {{ name: b, database: outage, interval: 500ms, timeout: 500ms, stale_after: 3s, sql: 'SELECT v FROM t', metrics: [{{ name: outage_b, value: v }}] }}
",
        port = db.port
    );
    let lookout = Lookout::start(&config);
    let outage = labels(&[("database", "outage")]);
    poll_until(Duration::from_secs(20), "values from the database", || {
        let (m, _) = scrape(&lookout);
        match (
            m.scalar("outage_a"),
            m.value("lookout_database_up", &outage),
        ) {
            (Some(7.0), Some(1.0)) => Ok(()),
            other => Err(format!("{other:?}\n{}", lookout.logs())),
        }
    });

    db.kill9();
    let killed = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut down_seen = None;
    let mut vanished = None;
    while killed.elapsed() < Duration::from_secs(10) {
        let (m, took) = scrape(&lookout);
        slowest = slowest.max(took);
        if down_seen.is_none() && m.value("lookout_database_up", &outage) == Some(0.0) {
            down_seen = Some(killed.elapsed());
        }
        if vanished.is_none() && m.scalar("outage_a").is_none() && m.scalar("outage_b").is_none() {
            vanished = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Margins are wide (a loaded two-core CI box, a debug build); the speeds are
    // measured in bench/, these are the behaviours.
    assert!(
        slowest < Duration::from_secs(2),
        "a scrape took {slowest:?} during the outage: it must not wait on the database"
    );
    let down_seen = down_seen
        .unwrap_or_else(|| panic!("lookout_database_up never dropped\n{}", lookout.logs()));
    let vanished =
        vanished.unwrap_or_else(|| panic!("stale series never vanished\n{}", lookout.logs()));
    // Not before stale_after (3 s after the last success, less the 1 s exposition cache):
    // a database outage must not blank the numbers early. That they vanish at all within
    // the 10 s watched is the other half.
    assert!(
        vanished >= Duration::from_secs(2),
        "series vanished after {vanished:?}, before stale_after"
    );
    let (m, _) = scrape(&lookout);
    let attempts = m
        .value("lookout_database_connection_errors_total", &outage)
        .unwrap_or(0.0);
    // Backoff 1 s, 2 s, 4 s, 8 s (jittered down to half): at most ~7 attempts in 10 s,
    // where two queries every 500 ms without backoff would make ~40.
    assert!(
        (1.0..=10.0).contains(&attempts),
        "{attempts} connection attempts during a 10 s outage"
    );

    db.start();
    let restarted = Instant::now();
    poll_until(
        Duration::from_secs(30),
        "values to return after the restart",
        || {
            let (m, _) = scrape(&lookout);
            match (
                m.scalar("outage_a"),
                m.scalar("outage_b"),
                m.value("lookout_database_up", &outage),
            ) {
                (Some(7.0), Some(7.0), Some(1.0)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    eprintln!(
        "outage: down seen after {down_seen:?}, series vanished after {vanished:?}, {attempts} attempts, recovered {:?} after restart, slowest scrape {slowest:?}",
        restarted.elapsed()
    );
}
