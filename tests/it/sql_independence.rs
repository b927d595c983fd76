//! Ten concurrent clients hammer `/metrics` for ten seconds; each query still runs only as
//! often as its interval says, because a scrape reads a snapshot and never the database.
//! The statements are counted by MariaDB itself (`information_schema.USER_STATISTICS`
//! for `lookout_counted`, a user only this test connects as; `.ci/services` creates it
//! and turns `userstat` on), not by lookout's own counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::db::{MariaDb, PASSWORD};
use crate::support::exposition::{Exposition, labels};
use crate::support::{Lookout, http_get, poll_until};

/// The user lookout connects as here, whose statements MariaDB counts.
const COUNTED_USER: &str = "lookout_counted";

/// SELECT statements MariaDB has counted for [`COUNTED_USER`] so far.
fn selects(db: &MariaDb) -> u64 {
    let counted = db.column(&format!(
        "SELECT SELECT_COMMANDS FROM information_schema.USER_STATISTICS WHERE USER = '{COUNTED_USER}'"
    ));
    counted
        .first()
        .cloned()
        .flatten()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn runs(lookout: &Lookout, query: &str) -> f64 {
    let body = http_get(&lookout.url("/metrics"), &[])
        .expect("scrape")
        .text();
    let m = Exposition::parse(&body).expect("valid exposition");
    m.value("lookout_query_runs_total", &labels(&[("query", query)]))
        .unwrap_or(0.0)
}

#[test]
fn scrape_load_does_not_reach_the_database() {
    let Some(db) = MariaDb::create() else { return };
    db.exec("CREATE TABLE t (v INT); INSERT INTO t VALUES (1)");
    let userstat = db.column("SELECT @@GLOBAL.userstat");
    if userstat.first().cloned().flatten().as_deref() != Some("1") {
        let why = "MariaDB's userstat is off (`bash .ci/services` turns it on)";
        assert!(!crate::support::in_ci(), "{why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let config = format!(
        "host: {{ enabled: false }}
databases:
  shop: {{ url: '{}', password: '{PASSWORD}' }}
queries:
  - {{ name: every2s, database: shop, interval: 2s, sql: 'SELECT v FROM t', metrics: [{{ name: ind_a, value: v }}] }}
  - {{ name: every5s, database: shop, interval: 5s, sql: 'SELECT v + 1 AS v FROM t', metrics: [{{ name: ind_b, value: v }}] }}
",
        db.url().replacen("lookout@", &format!("{COUNTED_USER}@"), 1)
    );
    let lookout = Lookout::start(&config);
    poll_until(Duration::from_secs(10), "both queries to run once", || {
        let (a, b) = (runs(&lookout, "every2s"), runs(&lookout, "every5s"));
        if a >= 1.0 && b >= 1.0 {
            Ok(())
        } else {
            Err(format!("{a} {b}"))
        }
    });
    let (a0, b0) = (runs(&lookout, "every2s"), runs(&lookout, "every5s"));
    let selects_before = selects(&db);
    let started = Instant::now();
    let scrapes = Arc::new(AtomicU64::new(0));
    let url = lookout.url("/metrics");
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let (url, scrapes) = (url.clone(), Arc::clone(&scrapes));
            std::thread::spawn(move || {
                while started.elapsed() < Duration::from_secs(10) {
                    let response =
                        http_get(&url, &[("Accept-Encoding", "gzip")]).expect("scrape under load");
                    assert_eq!(response.status, 200);
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let selected = selects(&db) - selects_before;
    let (a1, b1) = (runs(&lookout, "every2s"), runs(&lookout, "every5s"));
    let scrapes = scrapes.load(Ordering::Relaxed);
    eprintln!(
        "{scrapes} scrapes in {elapsed:.1}s; MariaDB counted {selected} SELECTs; every2s ran {} times, every5s {} times",
        a1 - a0,
        b1 - b0
    );
    // A generous floor: the point is that scrapes far outnumber statements.
    assert!(scrapes >= 100, "the load was real: {scrapes} scrapes");
    // What the database saw: one SELECT per run of each query on its own clock (give or
    // take one tick at each end of each), however many scrapes came in.
    let most = (elapsed / 2.0 + elapsed / 5.0 + 4.0).floor() as u64;
    assert!(
        (1..=most).contains(&selected),
        "MariaDB counted {selected} SELECTs from lookout during {scrapes} scrapes (at most {most} expected)"
    );
    // Runs follow the clock: elapsed / interval, give or take one tick at each end.
    assert!(
        (a1 - a0 - elapsed / 2.0).abs() <= 2.0,
        "every2s ran {} times in {elapsed:.1}s",
        a1 - a0
    );
    assert!(
        (b1 - b0 - elapsed / 5.0).abs() <= 2.0,
        "every5s ran {} times in {elapsed:.1}s",
        b1 - b0
    );
}
