//! The database packs against the exporters they stand in for, on the CI servers:
//! Debian's `prometheus-mysqld-exporter` and lookout's `mysql` pack read the same MariaDB
//! in one run, and lookout must give at least 95 % of its names under `mysql_up`,
//! `mysql_version_info`, `mysql_global_status_` and `mysql_global_variables_` with the
//! same type and label names, and the same values for the (static) variables. Then the
//! pack's server is killed and restarted: `mysql_up` goes 0 and back to 1.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::support::db::{PASSWORD, USER};
use crate::support::exposition::Exposition;
use crate::support::peers::MysqldExporter;
use crate::support::servers::PrivateMariaDb;
use crate::support::{Lookout, http_get, poll_until};

const MYSQL_PREFIXES: [&str; 4] = [
    "mysql_up",
    "mysql_version_info",
    "mysql_global_status_",
    "mysql_global_variables_",
];

/// Sample name → (type of its family, label names), for the names in scope.
fn shape(
    exposition: &Exposition,
    prefixes: &[&str],
) -> BTreeMap<String, (String, BTreeSet<String>)> {
    exposition
        .samples
        .iter()
        .filter(|(name, _)| prefixes.iter().any(|p| name.starts_with(p)))
        .map(|(name, samples)| {
            let kind = exposition.types.get(name).cloned().unwrap_or_default();
            let labels = samples
                .iter()
                .flat_map(|(labels, _)| labels.keys().cloned())
                .collect();
            (name.clone(), (kind, labels))
        })
        .collect()
}

fn scrape(lookout: &Lookout) -> Exposition {
    let response = http_get(
        &lookout.url("/metrics"),
        &[("Accept", "text/plain;version=0.0.4")],
    )
    .expect("scrape");
    assert_eq!(response.status, 200);
    Exposition::parse(&response.text()).expect("valid exposition")
}

#[test]
fn the_mysql_pack_gives_mysqld_exporters_names_types_and_values() {
    let Some(exporter) = MysqldExporter::start(&format!("{USER}:{PASSWORD}@(127.0.0.1:3306)/"))
    else {
        return;
    };
    let config = format!(
        "host: {{ enabled: false }}
databases:
  main: {{ url: 'mysql://{USER}@127.0.0.1:3306/', password: '{PASSWORD}', collect: [mysql], collect_interval: 1s }}
"
    );
    let lookout = Lookout::start(&config);
    let ours = poll_until(Duration::from_secs(20), "mysql_up 1 from the pack", || {
        let m = scrape(&lookout);
        (m.scalar("mysql_up") == Some(1.0))
            .then_some(m)
            .ok_or_else(|| lookout.logs())
    });
    let theirs = exporter.scrape();
    assert_eq!(
        theirs.scalar("mysql_up"),
        Some(1.0),
        "mysqld_exporter reaches the server"
    );

    let (our_shape, their_shape) = (
        shape(&ours, &MYSQL_PREFIXES),
        shape(&theirs, &MYSQL_PREFIXES),
    );
    let mut missing = Vec::new();
    let mut different = Vec::new();
    for (name, theirs) in &their_shape {
        match our_shape.get(name) {
            None => missing.push(name.as_str()),
            Some(ours) if ours != theirs => {
                different.push(format!("{name}: ours {ours:?}, theirs {theirs:?}"))
            }
            Some(_) => {}
        }
    }
    let matched = their_shape.len() - missing.len() - different.len();
    #[allow(clippy::cast_precision_loss)]
    let share = matched as f64 / their_shape.len() as f64;
    println!(
        "mysql pack: {matched} of mysqld_exporter's {} names match ({:.1} %); missing: {missing:?}; different: {different:?}",
        their_shape.len(),
        share * 100.0
    );
    assert!(
        their_shape.len() > 500,
        "mysqld_exporter gave {} names",
        their_shape.len()
    );
    assert!(
        share >= 0.95,
        "only {:.1} % match; missing {missing:?}; different {different:?}",
        share * 100.0
    );

    // Variables are static: the same values (mysql_version_info's labels too).
    let mut unequal = Vec::new();
    for (name, samples) in theirs
        .samples
        .iter()
        .filter(|(n, _)| n.starts_with("mysql_global_variables_") || *n == "mysql_version_info")
    {
        for (labels, value) in samples {
            let ours = ours.value(name, labels);
            if ours.is_none_or(|ours| ours != *value && !(ours.is_nan() && value.is_nan())) {
                unequal.push(format!("{name}{labels:?}: ours {ours:?}, theirs {value}"));
            }
        }
    }
    assert!(unequal.is_empty(), "variables differ: {unequal:#?}");
}

#[test]
fn mysql_up_follows_the_server_and_metrics_stay_fast() {
    let Some(mut db) = PrivateMariaDb::install(&["--skip-grant-tables".to_owned()]) else {
        return;
    };
    let config = format!(
        "host: {{ enabled: false }}
databases:
  main: {{ url: 'mysql://root@127.0.0.1:{}/', connect_timeout: 1s, collect: [mysql], collect_interval: 1s }}
",
        db.port
    );
    let lookout = Lookout::start(&config);
    poll_until(Duration::from_secs(20), "mysql_up 1", || {
        let m = scrape(&lookout);
        (m.scalar("mysql_up") == Some(1.0) && m.get("mysql_global_status_uptime").len() == 1)
            .then_some(())
            .ok_or_else(|| lookout.logs())
    });

    db.kill9();
    let killed = Instant::now();
    let mut slowest = Duration::ZERO;
    poll_until(Duration::from_secs(10), "mysql_up 0 after the kill", || {
        let started = Instant::now();
        let m = scrape(&lookout);
        slowest = slowest.max(started.elapsed());
        (m.scalar("mysql_up") == Some(0.0))
            .then_some(())
            .ok_or_else(|| "still up".to_owned())
    });
    let down_after = killed.elapsed();
    // Two intervals of 1 s, plus the connect timeout of the run in flight.
    assert!(
        down_after <= Duration::from_secs(3),
        "mysql_up 0 only after {down_after:?}"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "a scrape took {slowest:?} during the outage"
    );
    let m = scrape(&lookout);
    assert!(
        m.get("mysql_global_status_uptime").is_empty(),
        "no stale status while down"
    );

    db.start();
    poll_until(
        Duration::from_secs(90),
        "mysql_up 1 after the restart",
        || {
            let m = scrape(&lookout);
            (m.scalar("mysql_up") == Some(1.0))
                .then_some(())
                .ok_or_else(|| "still down".to_owned())
        },
    );
}
