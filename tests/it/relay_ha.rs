//! Relay high availability, end to end: real lookout replicas sharing one outbox on the
//! machine's PostgreSQL (and MariaDB), the verifying DingTalk mock as the robot.
//!
//! - Replicas started at the same instant on an empty database all become ready (the
//!   schema migrates once).
//! - Each notification posted to two replicas (an Alertmanager HA pair) is delivered once.
//! - A 300-alert storm spread over three replicas stays within the robot's 20/min in any
//!   60 s, provokes no 130101 and represents every alert.
//! - `kill -9` of the replica holding leases mid-delivery: everything is delivered, with
//!   no more duplicates than it had sends in flight, once its leases end.

use std::time::{Duration, Instant};

use crate::support::db::{MariaDb, PASSWORD, Postgres};
use crate::support::exposition::labels;
use crate::support::mocks::{DingTalkMock, Misbehave, Times};
use crate::support::payloads::{firing, single};
use crate::support::{Lookout, http_get, poll_until};

/// The lease every replica uses: a dead replica's rows wait this long.
const LEASE: Duration = Duration::from_secs(5);

fn config(mock: &DingTalkMock, outbox_url: &str, rate: &str) -> String {
    format!(
        "host: {{ enabled: false }}
relay: {{ outbox: '{outbox_url}', outbox_password: '{PASSWORD}', lease: {}s }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: SECops, rate_limit: '{rate}', retry: {{ initial: 100ms, max: 400ms }} }}
receivers:
  critical: {{ channels: [ops] }}
",
        LEASE.as_secs(),
        mock.webhook_url()
    )
}

/// `n` replicas started at the same instant.
fn replicas(config: &str, n: usize) -> Vec<Lookout> {
    std::thread::scope(|scope| {
        let starts: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| Lookout::start(config)))
            .collect();
        starts
            .into_iter()
            .map(|s| s.join().expect("a replica became ready"))
            .collect()
    })
}

/// Posts `body` to two replicas at once, as an Alertmanager HA pair does: both answer
/// 2xx, one having stored it and the other having found it stored.
fn post_to_both(a: &Lookout, b: &Lookout, body: &str) {
    std::thread::scope(|scope| {
        let one = scope.spawn(|| a.post_alerts("critical", body));
        let two = scope.spawn(|| b.post_alerts("critical", body));
        let mut statuses = [one.join().expect("post"), two.join().expect("post")]
            .map(|answer| answer["status"].as_str().unwrap_or_default().to_owned());
        statuses.sort();
        assert_eq!(statuses, ["accepted", "duplicate"]);
    });
}

/// Every name delivered exactly once (each message carries one notification).
fn delivered_once(mock: &DingTalkMock, names: &[String], replicas: &[Lookout]) {
    mock.wait_for_all(names, Duration::from_secs(60), || {
        let logs: Vec<String> = replicas.iter().map(Lookout::logs).collect();
        logs.join("\n----\n")
    });
    // Give a second delivery the time it would need to show.
    std::thread::sleep(Duration::from_secs(2));
    let texts = mock.texts();
    for name in names {
        let times = texts.iter().filter(|t| t.contains(name.as_str())).count();
        assert_eq!(times, 1, "{name} delivered {times} times");
    }
    assert_eq!(texts.len(), names.len(), "one message per notification");
}

#[test]
fn replicas_on_postgresql_start_at_once_and_deliver_what_both_of_a_pair_posted_once() {
    let Some(db) = Postgres::create() else { return };
    let mock = DingTalkMock::start("ha-robot", Some("SECops"));
    // Dedupe, not budgets, is under test: the robot takes more than its real 20/min.
    mock.set_rate_limit(100_000, Duration::from_secs(60), Duration::from_secs(1));
    let started = Instant::now();
    let replicas = replicas(&config(&mock, &db.url(), "1000/min"), 3);
    eprintln!(
        "3 replicas ready on an empty database in {:?}",
        started.elapsed()
    );
    assert_eq!(
        db.column("SELECT version FROM lookout_schema"),
        vec![Some("1".to_owned())],
        "migrated once"
    );
    let names: Vec<String> = (0..30).map(|i| format!("Pair{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        post_to_both(&replicas[i % 3], &replicas[(i + 1) % 3], &single(name));
    }
    delivered_once(&mock, &names, &replicas);
    let rows = db.column("SELECT COUNT(*) FROM lookout_notifications");
    assert_eq!(
        rows,
        vec![Some("30".to_owned())],
        "one row per notification"
    );
    let page = http_get(&replicas[2].url("/"), &[])
        .expect("status page")
        .text();
    // (HTML-escaped: a slash is `&#x2f;`.)
    assert!(
        page.contains("shared by replicas: postgres:")
            && page.contains("lookout@127.0.0.1:5432")
            && page.contains("(lease 5s)"),
        "the status page says where the outbox is"
    );
}

#[test]
fn replicas_on_mariadb_deliver_what_both_of_a_pair_posted_once() {
    let Some(db) = MariaDb::create() else { return };
    let mock = DingTalkMock::start("ha-robot-my", Some("SECops"));
    let replicas = replicas(&config(&mock, &db.url(), "1000/min"), 2);
    let names: Vec<String> = (0..20).map(|i| format!("MyPair{i:02}")).collect();
    for name in &names {
        post_to_both(&replicas[0], &replicas[1], &single(name));
    }
    delivered_once(&mock, &names, &replicas);
    assert_eq!(
        db.column("SELECT COUNT(*) FROM lookout_notifications"),
        vec![Some("20".to_owned())]
    );
}

#[test]
fn a_storm_over_three_replicas_stays_within_one_robots_budget() {
    let Some(db) = Postgres::create() else { return };
    let mock = DingTalkMock::start("ha-storm", Some("SECops"));
    let replicas = replicas(&config(&mock, &db.url(), "20/min"), 3);
    let started = Instant::now();
    // 300 alerts, one per notification, spread round-robin over the replicas.
    let mut all = Vec::new();
    for i in 0..300 {
        let alert = (i.to_string(), format!("{i:08x}{i:08x}"));
        all.push(alert.clone());
        let body = firing(&format!("HaStorm{i:03}"), &[alert]);
        let answer = replicas[i % 3].post_alerts("critical", &body);
        assert_eq!(answer["status"], "accepted", "{answer}");
    }
    let ops = labels(&[("channel", "ops")]);
    poll_until(Duration::from_secs(200), "the storm to drain", || {
        let pending: f64 = replicas
            .iter()
            .map(|r| {
                r.metrics()
                    .value("lookout_outbox_pending", &ops)
                    .unwrap_or(-1.0)
            })
            .fold(0.0, f64::max);
        if pending == 0.0 {
            Ok(())
        } else {
            Err(format!("pending {pending}"))
        }
    });
    assert_eq!(
        mock.rate_limited_count(),
        0,
        "the robot never answered 130101"
    );
    let busiest = mock.max_in_any_window(Duration::from_secs(60));
    assert!(busiest <= 20, "{busiest} messages in one minute");
    let marks: Vec<Vec<String>> = all
        .iter()
        .map(|(id, fp)| {
            let fp8 = fp.get(..8).unwrap_or_default();
            let name = format!("HaStorm{:03}", id.parse::<usize>().unwrap_or(0));
            vec![name, format!("[{fp8}]")]
        })
        .collect();
    let (shown, omitted) = mock.alerts_represented(&marks);
    assert!(
        shown + omitted >= 300,
        "{shown} shown + {omitted} counted < 300"
    );
    eprintln!(
        "HA storm: {} messages from 3 replicas, busiest minute {busiest}, {shown} alerts shown, {omitted} counted, drained in {:?}",
        mock.messages().len(),
        started.elapsed()
    );
}

#[test]
fn kill_9_of_the_replica_holding_leases_loses_nothing() {
    let Some(db) = Postgres::create() else { return };
    let mock = DingTalkMock::start("ha-crash", Some("SECops"));
    // Slow sends, so the kill lands mid-delivery; budgets play no part here.
    mock.misbehave(
        Misbehave::Delay(Duration::from_millis(100)),
        Times::UntilReset,
    );
    mock.set_rate_limit(100_000, Duration::from_secs(60), Duration::from_secs(1));
    let mut replicas = replicas(&config(&mock, &db.url(), "100000/min"), 3);
    let names: Vec<String> = (0..300).map(|i| format!("HaCrash{i:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        replicas[i % 3].post_alerts("critical", &single(name));
    }
    poll_until(Duration::from_secs(60), "deliveries under way", || {
        let n = mock.messages().len();
        if n >= 50 { Ok(()) } else { Err(format!("{n}")) }
    });
    // The replica holding leases right now (the pid is in its holder name).
    let holders = db.column(
        "SELECT leased_by FROM lookout_deliveries WHERE leased_by IS NOT NULL AND state = 'pending' ORDER BY id",
    );
    let holder = holders
        .iter()
        .flatten()
        .next()
        .cloned()
        .expect("some replica holds a lease mid-delivery");
    let victim = replicas
        .iter()
        .position(|r| holder.contains(&format!("-{}-", r.pid())))
        .unwrap_or_else(|| panic!("no replica is {holder}"));
    let in_flight = holders.iter().flatten().filter(|h| **h == holder).count();
    let killed_at = Instant::now();
    let before = mock.messages().len();
    replicas[victim].kill9();
    let held: Vec<String> = db
        .column(&format!(
            "SELECT d.id FROM lookout_deliveries d WHERE d.leased_by = '{holder}' AND d.state = 'pending'"
        ))
        .into_iter()
        .flatten()
        .collect();
    let failover = if held.is_empty() {
        Duration::ZERO
    } else {
        poll_until(
            Duration::from_secs(60),
            "the dead replica's rows delivered",
            || {
                let list = held.join(",");
                let left = db.column(&format!(
                "SELECT COUNT(*) FROM lookout_deliveries WHERE id IN ({list}) AND state = 'pending'"
            ));
                if left == vec![Some("0".to_owned())] {
                    Ok(())
                } else {
                    Err(format!("{left:?}"))
                }
            },
        );
        killed_at.elapsed()
    };
    mock.wait_for_all(&names, Duration::from_secs(120), String::new);
    std::thread::sleep(Duration::from_secs(1));
    let duplicates = mock.messages().len() - names.len();
    assert!(
        duplicates <= in_flight.max(held.len()),
        "{duplicates} duplicates with {in_flight} rows in flight at the kill"
    );
    if !held.is_empty() {
        // Renewed every third of the lease: the last renewal ends 2/3 to 3/3 of it later.
        assert!(
            failover >= LEASE / 2,
            "rows of a dead replica wait for its lease ({failover:?})"
        );
    }
    eprintln!(
        "HA kill -9: {before} delivered before, all 300 after; the dead replica held {} row(s), resumed after {failover:?} (lease {LEASE:?}); {duplicates} duplicate(s)",
        held.len()
    );
}
