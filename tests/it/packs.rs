//! The database packs against the exporters they stand in for, on the CI servers:
//! Debian's `prometheus-mysqld-exporter` and lookout's `mysql` pack read the same MariaDB
//! in one run, and lookout must give at least 95 % of its names under `mysql_up`,
//! `mysql_version_info`, `mysql_global_status_` and `mysql_global_variables_` with the
//! same type and label names, and the same values for the (static) variables. Then the
//! pack's server is killed and restarted: `mysql_up` goes 0 and back to 1.
//!
//! The same for the `postgres` pack beside Debian's `prometheus-postgres-exporter`: at
//! least 90 % of its `pg_*` names (not its own `pg_exporter_*`/`pg_scrape_collector_*`)
//! with the same type and label names, leaving out the `server` label 0.11.1 adds, and
//! equal `pg_settings_*` values; `pg_up` follows a private cluster stopped and started.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::support::db::{PASSWORD, USER};
use crate::support::exposition::Exposition;
use crate::support::exposition::Labels;
use crate::support::peers::DatabaseExporter;
use crate::support::servers::{PrivateMariaDb, PrivatePostgres};
use crate::support::{Lookout, http_get, poll_until};

const MYSQL_PREFIXES: [&str; 4] = [
    "mysql_up",
    "mysql_version_info",
    "mysql_global_status_",
    "mysql_global_variables_",
];

type Shape = BTreeMap<String, (String, BTreeSet<String>)>;

/// Sample name → (type of its family, label names), for the names in scope.
fn shape(exposition: &Exposition, in_scope: impl Fn(&str) -> bool) -> Shape {
    exposition
        .samples
        .iter()
        .filter(|(name, _)| in_scope(name))
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

/// The share of `theirs` that `ours` has with the same type and label names; prints the
/// figure and the names missing or different.
fn matching_share(what: &str, ours: &Shape, theirs: &Shape) -> f64 {
    let mut missing = Vec::new();
    let mut different = Vec::new();
    for (name, theirs) in theirs {
        match ours.get(name) {
            None => missing.push(name.as_str()),
            Some(ours) if ours != theirs => {
                different.push(format!("{name}: ours {ours:?}, theirs {theirs:?}"))
            }
            Some(_) => {}
        }
    }
    let matched = theirs.len() - missing.len() - different.len();
    #[allow(clippy::cast_precision_loss)]
    let share = matched as f64 / theirs.len().max(1) as f64;
    println!(
        "{what}: {matched} of {} names match ({:.1} %); missing: {missing:?}; different: {different:?}",
        theirs.len(),
        share * 100.0
    );
    share
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
    let Some(exporter) = DatabaseExporter::mysqld(&format!("{USER}:{PASSWORD}@(127.0.0.1:3306)/"))
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

    let in_scope = |name: &str| MYSQL_PREFIXES.iter().any(|p| name.starts_with(p));
    let their_shape = shape(&theirs, in_scope);
    let share = matching_share(
        "mysql pack vs mysqld_exporter",
        &shape(&ours, in_scope),
        &their_shape,
    );
    assert!(
        their_shape.len() > 500,
        "mysqld_exporter gave {} names",
        their_shape.len()
    );
    assert!(share >= 0.95, "only {:.1} % match", share * 100.0);

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

/// postgres_exporter's own names, which no pack stands in for.
fn postgres_in_scope(name: &str) -> bool {
    name.starts_with("pg_")
        && !name.starts_with("pg_exporter_")
        && !name.starts_with("pg_scrape_collector_")
}

/// postgres_exporter 0.11.1's exposition without its `server` label.
fn without_server(mut exposition: Exposition) -> Exposition {
    for samples in exposition.samples.values_mut() {
        for (labels, _) in samples.iter_mut() {
            labels.remove("server");
        }
    }
    exposition
}

#[test]
fn the_postgres_pack_gives_postgres_exporters_names_types_and_settings() {
    let Some(exporter) = DatabaseExporter::postgres(&format!(
        "postgresql://{USER}:{PASSWORD}@127.0.0.1:5432/postgres?sslmode=disable"
    )) else {
        return;
    };
    let config = format!(
        "host: {{ enabled: false }}
databases:
  main: {{ url: 'postgres://{USER}@127.0.0.1:5432/postgres', password: '{PASSWORD}', collect: [postgres], collect_interval: 1s }}
"
    );
    let lookout = Lookout::start(&config);
    let ours = poll_until(Duration::from_secs(20), "pg_up 1 from the pack", || {
        let m = scrape(&lookout);
        (m.scalar("pg_up") == Some(1.0) && !m.get("pg_settings_max_connections").is_empty())
            .then_some(m)
            .ok_or_else(|| lookout.logs())
    });
    let theirs = without_server(exporter.scrape());
    assert_eq!(
        theirs.scalar("pg_up"),
        Some(1.0),
        "postgres_exporter reaches the server"
    );
    let their_shape = shape(&theirs, postgres_in_scope);
    let share = matching_share(
        "postgres pack vs postgres_exporter",
        &shape(&ours, postgres_in_scope),
        &their_shape,
    );
    assert!(
        their_shape.len() > 250,
        "postgres_exporter gave {} names",
        their_shape.len()
    );
    assert!(share >= 0.90, "only {:.1} % match", share * 100.0);
    // Counters that keep postgres_exporter's names without `_total`.
    assert_eq!(ours.type_of("pg_stat_database_blks_hit"), Some("counter"));

    // Settings: equal values, except those lookout's own session overrides, which the
    // pack leaves out rather than report lookout's values.
    let own_session = [
        "pg_settings_default_transaction_read_only",
        "pg_settings_statement_timeout_seconds",
        "pg_settings_transaction_read_only",
    ];
    // The exporter's driver (lib/pq) sets extra_float_digits=2 in its own session.
    let exporters_session = "pg_settings_extra_float_digits";
    let mut unequal = Vec::new();
    let mut compared = 0;
    for (name, samples) in theirs.samples.iter().filter(|(n, _)| {
        n.starts_with("pg_settings_")
            && !own_session.contains(&n.as_str())
            && n.as_str() != exporters_session
    }) {
        for (labels, value) in samples {
            compared += 1;
            let ours = ours.value(name, labels);
            if ours.is_none_or(|ours| ours != *value) {
                unequal.push(format!("{name}: ours {ours:?}, theirs {value}"));
            }
        }
    }
    println!("postgres pack: {compared} settings compared");
    assert!(compared > 200, "only {compared} settings");
    assert!(unequal.is_empty(), "settings differ: {unequal:#?}");
    for name in own_session {
        assert!(
            ours.get(name).is_empty(),
            "{name} is lookout's own session's"
        );
    }
    assert_eq!(
        ours.value("pg_static", &static_labels(&theirs)),
        Some(1.0),
        "pg_static names the same version"
    );
}

/// The labels of `pg_static`'s one sample.
fn static_labels(exposition: &Exposition) -> Labels {
    exposition
        .get("pg_static")
        .first()
        .map(|(labels, _)| labels.clone())
        .unwrap_or_default()
}

#[test]
fn pg_up_follows_the_server_and_metrics_stay_fast() {
    let Some(db) = PrivatePostgres::install("", "host all all 127.0.0.1/32 trust", &[]) else {
        return;
    };
    let config = format!(
        "host: {{ enabled: false }}
databases:
  main: {{ url: 'postgres://postgres@127.0.0.1:{}/postgres', connect_timeout: 1s, collect: [postgres], collect_interval: 1s }}
",
        db.port
    );
    let lookout = Lookout::start(&config);
    poll_until(Duration::from_secs(20), "pg_up 1", || {
        let m = scrape(&lookout);
        (m.scalar("pg_up") == Some(1.0) && m.scalar("pg_postmaster_start_time_seconds").is_some())
            .then_some(())
            .ok_or_else(|| lookout.logs())
    });

    db.stop_immediately();
    let stopped = Instant::now();
    let mut slowest = Duration::ZERO;
    poll_until(Duration::from_secs(10), "pg_up 0 after the stop", || {
        let started = Instant::now();
        let m = scrape(&lookout);
        slowest = slowest.max(started.elapsed());
        (m.scalar("pg_up") == Some(0.0))
            .then_some(())
            .ok_or_else(|| "still up".to_owned())
    });
    let down_after = stopped.elapsed();
    assert!(
        down_after <= Duration::from_secs(3),
        "pg_up 0 only after {down_after:?}"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "a scrape took {slowest:?} during the outage"
    );
    let m = scrape(&lookout);
    assert!(
        m.get("pg_postmaster_start_time_seconds").is_empty(),
        "no stale values while down"
    );

    db.start();
    poll_until(Duration::from_secs(90), "pg_up 1 after the restart", || {
        let m = scrape(&lookout);
        (m.scalar("pg_up") == Some(1.0))
            .then_some(())
            .ok_or_else(|| "still down".to_owned())
    });
}

/// `exposition` without lookout's `database` label (given when several databases run one
/// pack), and with the exporter's own `database` label back from `exported_database`, for
/// comparing with an exporter that reads one server.
fn without_database(mut exposition: Exposition) -> Exposition {
    for samples in exposition.samples.values_mut() {
        for (labels, _) in samples.iter_mut() {
            labels.remove("database");
            if let Some(exported) = labels.remove("exported_database") {
                labels.insert("database".to_owned(), exported);
            }
        }
    }
    exposition
}

/// The value of `name` for the sample whose labels include all of `having`.
fn value_with(exposition: &Exposition, name: &str, having: &[(&str, &str)]) -> Option<f64> {
    exposition
        .get(name)
        .iter()
        .find(|(labels, _)| {
            having
                .iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, value)| *value)
}

#[test]
fn the_postgres_pack_follows_a_streaming_replica_and_its_slot() {
    let Some(primary) = PrivatePostgres::install(
        "",
        "local replication all trust\nhost all all 127.0.0.1/32 trust",
        &[],
    ) else {
        return;
    };
    let replica = PrivatePostgres::replica_of(&primary, "standby1");
    let config = format!(
        "host: {{ enabled: false }}
databases:
  primary: {{ url: 'postgres://postgres@127.0.0.1:{}/postgres', collect: [postgres], collect_interval: 1s }}
  replica: {{ url: 'postgres://postgres@127.0.0.1:{}/postgres', collect: [postgres], collect_interval: 1s }}
",
        primary.port, replica.port
    );
    let lookout = Lookout::start(&config);
    primary.sql("CREATE TABLE replicated (i int); INSERT INTO replicated VALUES (1)");
    let ours = poll_until(Duration::from_secs(30), "the standby streaming", || {
        let m = scrape(&lookout);
        let primary_has = |name: &str, having: &[(&str, &str)]| {
            let mut having = having.to_vec();
            having.push(("database", "primary"));
            value_with(&m, name, &having)
        };
        let ready = primary_has("pg_replication_is_replica", &[]) == Some(0.0)
            && value_with(&m, "pg_replication_is_replica", &[("database", "replica")]) == Some(1.0)
            && value_with(&m, "pg_replication_lag_seconds", &[("database", "replica")]).is_some()
            && value_with(
                &m,
                "pg_replication_last_replay_seconds",
                &[("database", "replica")],
            )
            .is_some()
            && primary_has("pg_replication_slots_active", &[("slot_name", "standby1")])
                == Some(1.0)
            && primary_has(
                "pg_stat_replication_pg_wal_lsn_diff",
                &[("state", "streaming")],
            )
            .is_some();
        ready.then_some(m).ok_or_else(|| lookout.logs())
    });
    assert!(
        value_with(
            &ours,
            "pg_replication_last_replay_seconds",
            &[("database", "primary")]
        )
        .is_none(),
        "a primary replays nothing"
    );

    // The replication families have postgres_exporter's names and labels.
    if let Some(exporter) = DatabaseExporter::postgres(&format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        primary.port
    )) {
        let in_scope = |name: &str| {
            name.starts_with("pg_stat_replication_") || name.starts_with("pg_replication_slots_")
        };
        // The replica has neither standbys nor slots: these samples are the primary's.
        let ours = without_database(scrape(&lookout));
        let their_shape = shape(&without_server(exporter.scrape()), in_scope);
        let share = matching_share(
            "postgres pack vs postgres_exporter, replication",
            &shape(&ours, in_scope),
            &their_shape,
        );
        assert!(their_shape.len() >= 4, "{their_shape:?}");
        assert!(share >= 1.0, "only {:.1} % match", share * 100.0);
    }

    // The standby goes away: its slot turns inactive on the primary.
    drop(replica);
    poll_until(Duration::from_secs(20), "the slot inactive", || {
        let m = scrape(&lookout);
        (value_with(
            &m,
            "pg_replication_slots_active",
            &[("database", "primary"), ("slot_name", "standby1")],
        ) == Some(0.0))
        .then_some(())
        .ok_or_else(|| "still active".to_owned())
    });
}

#[test]
fn the_mysql_pack_on_a_replica_gives_mysqld_exporters_slave_status() {
    let Some(source) =
        PrivateMariaDb::install(&["--log-bin=mysql-bin".to_owned(), "--server-id=1".to_owned()])
    else {
        return;
    };
    let Some(replica) = PrivateMariaDb::install(&["--server-id=2".to_owned()]) else {
        return;
    };
    source.sql(
        "CREATE USER repl@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO repl@'%'",
    );
    // The privileges the README asks for, nothing more.
    replica.sql(
        "CREATE USER lookout@'%' IDENTIFIED BY 'pack'; GRANT PROCESS, SLAVE MONITOR ON *.* TO lookout@'%'",
    );
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD='repl'; START SLAVE",
        source.port
    ));
    let config = format!(
        "host: {{ enabled: false }}
databases:
  replica: {{ url: 'mysql://lookout@127.0.0.1:{}/', password: pack, collect: [mysql], collect_interval: 1s }}
",
        replica.port
    );
    let lookout = Lookout::start(&config);
    source.sql("CREATE DATABASE replicated");
    let running = |m: &Exposition, thread: &str| {
        value_with(
            m,
            &format!("mysql_slave_status_slave_{thread}_running"),
            &[("master_host", "127.0.0.1")],
        )
    };
    let ours = poll_until(Duration::from_secs(30), "the replica running", || {
        let m = scrape(&lookout);
        (running(&m, "io") == Some(1.0)
            && running(&m, "sql") == Some(1.0)
            && m.get("mysql_slave_status_seconds_behind_master").len() == 1)
            .then_some(m)
            .ok_or_else(|| lookout.logs())
    });

    if let Some(exporter) =
        DatabaseExporter::mysqld(&format!("lookout:pack@(127.0.0.1:{})/", replica.port))
    {
        let in_scope = |name: &str| name.starts_with("mysql_slave_status_");
        let their_shape = shape(&exporter.scrape(), in_scope);
        let share = matching_share(
            "mysql pack vs mysqld_exporter, replica status",
            &shape(&ours, in_scope),
            &their_shape,
        );
        assert!(their_shape.len() >= 20, "{their_shape:?}");
        assert!(share >= 0.95, "only {:.1} % match", share * 100.0);
    }

    // The SQL thread stops: the pack says so.
    replica.sql("STOP SLAVE SQL_THREAD");
    poll_until(Duration::from_secs(10), "slave_sql_running 0", || {
        let m = scrape(&lookout);
        (running(&m, "sql") == Some(0.0) && running(&m, "io") == Some(1.0))
            .then_some(())
            .ok_or_else(|| "still running".to_owned())
    });
}
