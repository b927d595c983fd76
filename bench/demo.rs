//! `cargo bench --bench demo`: how long the demo's queries take against the seeded demo
//! shop (SQLite), all of them together, best of `ROUNDS` rounds (default 20), with the
//! slowest three. Target (the budget the test suite used to assert): all queries together in ≤ 50 ms
//! in a release build. The test suite only checks that each query returns rows; this
//! is where its speed is measured.

use std::time::{Duration, Instant};

use lookout::config::{Sources, parse_str};
use lookout::demo;
use rusqlite::{Connection, OpenFlags};

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let path = demo::prepare(dir.path()).expect("seed the demo database");
    println!("seeding_ms={}", started.elapsed().as_millis());
    let config = parse_str("demo.yaml", &demo::config_yaml(&path), &Sources::system())
        .expect("the demo config is valid");
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open read-only");
    let mut best = Duration::MAX;
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..rounds {
        let round = Instant::now();
        let mut each = Vec::new();
        for query in &config.queries {
            let started = Instant::now();
            let mut statement = conn.prepare(&query.sql).expect("prepare");
            let mut rows = statement.query([]).expect("query");
            while rows.next().expect("row").is_some() {}
            each.push((started.elapsed(), query.name.clone()));
        }
        let took = round.elapsed();
        totals.push(took);
        if took < best {
            best = took;
            slowest = each;
        }
    }
    totals.sort();
    slowest.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    println!("queries={}", config.queries.len());
    println!("rounds={rounds}");
    println!("best_ms={:.2}", best.as_secs_f64() * 1e3);
    println!(
        "median_ms={:.2}",
        totals[totals.len() / 2].as_secs_f64() * 1e3
    );
    for (took, name) in slowest.iter().take(3) {
        println!("slowest={name}:{:.2}ms", took.as_secs_f64() * 1e3);
    }
    println!(
        "target_met={}",
        if best <= Duration::from_millis(50) {
            "yes"
        } else {
            "no"
        }
    );
}
