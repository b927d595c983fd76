//! `cargo bench --bench outbox`: the cost of the outbox statistics the dispatcher reads
//! every second, at `ROWS` delivery rows (default 300,000), against the version 1 query
//! (a full scan of `deliveries` grouped by channel) on the same database.
//!
//! Fills a fresh outbox through the real schema (the triggers keep the counts), then
//! times `Outbox::stats()` and the version 1 SQL, `RUNS` times each (default 20), and
//! prints `key=value` lines: rows, the medians and maxima in milliseconds, and the query
//! plan of the new statistics. Run by `bench/status.sh`.

use std::time::{Duration, Instant};

use lookout::outbox::Outbox;
use rusqlite::{Connection, params};

/// The statistics query of schema version 1, for comparison.
const STATS_V1: &str = "SELECT channel,
        SUM(state = 'pending'),
        MIN(CASE WHEN state = 'pending' THEN created_at_ms END),
        SUM(state = 'delivered'),
        SUM(state = 'dead')
     FROM deliveries GROUP BY channel ORDER BY channel";

const CHANNELS: [&str; 4] = ["ops-dingtalk", "ops-wecom", "oncall-sms", "console"];

type Error = Box<dyn std::error::Error>;

fn env_number(name: &str, default: usize) -> Result<usize, Error> {
    match std::env::var(name) {
        Ok(text) => Ok(text.parse().map_err(|e| format!("{name}={text}: {e}"))?),
        Err(_) => Ok(default),
    }
}

/// `rows` deliveries (one per notification) across four channels: 1 % pending, 1 % dead,
/// the rest delivered, as after a busy week.
fn fill(path: &std::path::Path, rows: usize) -> Result<(), Error> {
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let payload = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/payloads/firing.json"
        ))?;
        let mut notification = tx.prepare(
            "INSERT INTO notifications (receiver, dedupe_key, payload, received_at_ms) VALUES ('critical', ?1, ?2, ?3)",
        )?;
        let mut delivery = tx.prepare(
            "INSERT INTO deliveries (notification_id, channel, state, next_attempt_at_ms, created_at_ms, updated_at_ms, summary)
             VALUES (?1, ?2, ?3, ?4, ?4, ?4, 'firing TransactionFailureRateHigh ×2')",
        )?;
        let start = 1_767_225_600_000_i64;
        for i in 0..rows {
            let at = start + i as i64 * 2_000;
            notification.execute(params![format!("key-{i}"), payload, at])?;
            let id = tx.last_insert_rowid();
            let state = match i % 100 {
                0 => "pending",
                1 => "dead",
                _ => "delivered",
            };
            delivery.execute(params![id, CHANNELS[i % CHANNELS.len()], state, at])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{name}_median_ms={:.3}", ms(times[times.len() / 2]));
    println!("{name}_max_ms={:.3}", ms(times[times.len() - 1]));
}

fn main() -> Result<(), Error> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rows = env_number("ROWS", 300_000)?;
    let runs = env_number("RUNS", 20)?.max(1);
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Create the schema through the real code, then fill it directly (fast, one commit).
    drop(Outbox::open_local(dir.path())?);
    let path = dir.path().join("outbox.db");
    let started = Instant::now();
    fill(&path, rows)?;
    println!("rows={rows}");
    println!("fill_s={:.1}", started.elapsed().as_secs_f64());

    let outbox = Outbox::open_local(dir.path())?;
    let (mut new, mut old) = (Vec::new(), Vec::new());
    let stats = runtime.block_on(outbox.stats())?;
    let pending: i64 = stats.iter().map(|s| s.pending).sum();
    println!("channels={} pending={pending}", stats.len());
    let conn = Connection::open(&path)?;
    for _ in 0..runs {
        let started = Instant::now();
        runtime.block_on(outbox.stats())?;
        new.push(started.elapsed());
        let started = Instant::now();
        let mut statement = conn.prepare_cached(STATS_V1)?;
        let counted: Vec<i64> = statement
            .query_map([], |r| r.get::<_, i64>(1))?
            .collect::<Result<_, _>>()?;
        old.push(started.elapsed());
        assert_eq!(
            counted.iter().sum::<i64>(),
            pending,
            "both count the same rows"
        );
    }
    summary("stats", new);
    summary("stats_v1", old);
    let plan: Vec<String> = conn
        .prepare("EXPLAIN QUERY PLAN SELECT MIN(created_at_ms) FROM deliveries WHERE channel = 'console' AND state = 'pending'")?
        .query_map([], |r| r.get::<_, String>(3))?
        .collect::<Result<_, _>>()?;
    println!("oldest_pending_plan={}", plan.join("; "));
    Ok(())
}
