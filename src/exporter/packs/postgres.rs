//! The `postgres` pack: what postgres_exporter's default collectors give, under its
//! names, label names and types (as Debian's 0.11.1 writes them), so its dashboards and
//! mixin alerts work unchanged.
//!
//! - `pg_up`, `pg_static{version,short_version}`, `pg_postmaster_start_time_seconds`,
//!   `pg_replication_is_replica`, `pg_replication_lag_seconds` (0 on a primary, and on a
//!   replica that has replayed all it received), `pg_replication_last_replay_seconds`
//!   (replicas only).
//! - Views mapped column by column as postgres_exporter's built-in map does
//!   ([`VIEWS`]): `pg_stat_database_*{datid,datname}`, `pg_stat_database_conflicts_*`,
//!   `pg_locks_count{datname,mode}` (every mode of every database),
//!   `pg_stat_activity_count` / `_max_tx_duration{datname,state}` (every state of every
//!   database), `pg_stat_replication_*{application_name,client_addr,state,slot_name}` on a
//!   primary with standbys, `pg_replication_slots_*{slot_name,database}`,
//!   `pg_stat_archiver_*`. A column the map does not know becomes an untyped
//!   `<view>_<column>` if it is a number, as postgres_exporter does for new server
//!   versions' columns.
//! - `pg_database_size_bytes{datname}`, `pg_stat_bgwriter_<column>_total` (counters).
//! - `pg_settings_<name>[_seconds|_bytes]`: numeric and boolean settings, times in
//!   seconds and sizes in bytes.
//!
//! Counters of the built-in map keep postgres_exporter's names without `_total`
//! ([`Kind::LegacyCounter`]). NULL is `NaN`, as there. Two deliberate differences: no
//! `server="host:port"` label (0.11.1 adds it; postgres_exporter's own collectors dropped
//! it from 0.12 on, and Prometheus's `instance` names the target), and no settings that
//! lookout's own session overrides (`source` `client` or `session`: its read-only default
//! and statement timeout), which would report lookout's values, not the server's.

use std::borrow::Cow;

use super::Families;
use crate::exporter::family::{Family, Kind, Labels, labels};
use crate::exporter::sql::rows::ResultSet;
use crate::exporter::sql::value::Value;

/// The server's identity; the first statement of a run (its failure is `pg_up 0`).
pub const SERVER: &str = "SELECT version() AS version, \
     extract(epoch from pg_postmaster_start_time())::float8 AS start_time_seconds, \
     pg_is_in_recovery() AS is_replica, \
     CASE WHEN NOT pg_is_in_recovery() THEN 0 \
          WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
          ELSE GREATEST(0, extract(epoch from now() - pg_last_xact_replay_timestamp()))::float8 \
     END AS lag, \
     CASE WHEN pg_is_in_recovery() \
          THEN GREATEST(0, extract(epoch from now() - pg_last_xact_replay_timestamp()))::float8 \
     END AS last_replay";

pub const DATABASE_SIZE: &str =
    "SELECT datname, pg_database_size(datname)::float8 AS size FROM pg_database";

pub const BGWRITER: &str = "SELECT * FROM pg_stat_bgwriter";

pub const SETTINGS: &str = "SELECT name, setting, COALESCE(unit, '') AS unit, short_desc, vartype \
     FROM pg_settings \
     WHERE vartype IN ('bool', 'integer', 'real') AND name != 'sync_commit_cancel_wait' \
       AND source NOT IN ('client', 'session')";

/// How one column of a mapped view becomes samples.
#[derive(Debug, Clone, Copy)]
pub enum Column {
    Label,
    Discard,
    Gauge(&'static str),
    Counter(&'static str),
}

/// A view read by one statement and mapped column by column, as postgres_exporter's
/// built-in metric map reads it.
#[derive(Debug)]
pub struct View {
    pub namespace: &'static str,
    pub query: &'static str,
    pub columns: &'static [(&'static str, Column)],
}

use Column::{Counter, Discard, Gauge, Label};

/// The built-in map's views, in run order.
pub const VIEWS: &[View] = &[
    View {
        namespace: "pg_stat_database",
        query: "SELECT * FROM pg_stat_database",
        columns: &[
            ("datid", Label),
            ("datname", Label),
            (
                "numbackends",
                Gauge(
                    "Number of backends currently connected to this database. This is the only column in this view that returns a value reflecting current state; all other columns return the accumulated values since the last reset.",
                ),
            ),
            (
                "xact_commit",
                Counter("Number of transactions in this database that have been committed"),
            ),
            (
                "xact_rollback",
                Counter("Number of transactions in this database that have been rolled back"),
            ),
            (
                "blks_read",
                Counter("Number of disk blocks read in this database"),
            ),
            (
                "blks_hit",
                Counter(
                    "Number of times disk blocks were found already in the buffer cache, so that a read was not necessary (this only includes hits in the PostgreSQL buffer cache, not the operating system's file system cache)",
                ),
            ),
            (
                "tup_returned",
                Counter("Number of rows returned by queries in this database"),
            ),
            (
                "tup_fetched",
                Counter("Number of rows fetched by queries in this database"),
            ),
            (
                "tup_inserted",
                Counter("Number of rows inserted by queries in this database"),
            ),
            (
                "tup_updated",
                Counter("Number of rows updated by queries in this database"),
            ),
            (
                "tup_deleted",
                Counter("Number of rows deleted by queries in this database"),
            ),
            (
                "conflicts",
                Counter(
                    "Number of queries canceled due to conflicts with recovery in this database. (Conflicts occur only on standby servers; see pg_stat_database_conflicts for details.)",
                ),
            ),
            (
                "temp_files",
                Counter(
                    "Number of temporary files created by queries in this database. All temporary files are counted, regardless of why the temporary file was created (e.g., sorting or hashing), and regardless of the log_temp_files setting.",
                ),
            ),
            (
                "temp_bytes",
                Counter(
                    "Total amount of data written to temporary files by queries in this database. All temporary files are counted, regardless of why the temporary file was created, and regardless of the log_temp_files setting.",
                ),
            ),
            (
                "deadlocks",
                Counter("Number of deadlocks detected in this database"),
            ),
            (
                "blk_read_time",
                Counter(
                    "Time spent reading data file blocks by backends in this database, in milliseconds",
                ),
            ),
            (
                "blk_write_time",
                Counter(
                    "Time spent writing data file blocks by backends in this database, in milliseconds",
                ),
            ),
            (
                "stats_reset",
                Counter("Time at which these statistics were last reset"),
            ),
        ],
    },
    View {
        namespace: "pg_stat_database_conflicts",
        query: "SELECT * FROM pg_stat_database_conflicts",
        columns: &[
            ("datid", Label),
            ("datname", Label),
            (
                "confl_tablespace",
                Counter(
                    "Number of queries in this database that have been canceled due to dropped tablespaces",
                ),
            ),
            (
                "confl_lock",
                Counter(
                    "Number of queries in this database that have been canceled due to lock timeouts",
                ),
            ),
            (
                "confl_snapshot",
                Counter(
                    "Number of queries in this database that have been canceled due to old snapshots",
                ),
            ),
            (
                "confl_bufferpin",
                Counter(
                    "Number of queries in this database that have been canceled due to pinned buffers",
                ),
            ),
            (
                "confl_deadlock",
                Counter(
                    "Number of queries in this database that have been canceled due to deadlocks",
                ),
            ),
        ],
    },
    View {
        namespace: "pg_locks",
        query: "SELECT pg_database.datname, tmp.mode, COALESCE(count, 0) AS count \
            FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), \
                         ('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'), \
                         ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS tmp(mode) \
            CROSS JOIN pg_database \
            LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count \
                       FROM pg_locks WHERE database IS NOT NULL \
                       GROUP BY database, lower(mode)) AS tmp2 \
              ON tmp.mode = tmp2.mode AND pg_database.oid = tmp2.database \
            ORDER BY 1",
        columns: &[
            ("datname", Label),
            ("mode", Label),
            ("count", Gauge("Number of locks")),
        ],
    },
    View {
        namespace: "pg_stat_activity",
        query: "SELECT pg_database.datname, tmp.state, \
                COALESCE(count, 0) AS count, COALESCE(max_tx_duration, 0) AS max_tx_duration \
            FROM (VALUES ('active'), ('idle'), ('idle in transaction'), \
                         ('idle in transaction (aborted)'), ('fastpath function call'), \
                         ('disabled')) AS tmp(state) \
            CROSS JOIN pg_database \
            LEFT JOIN (SELECT datname, state, count(*) AS count, \
                              MAX(extract(epoch from now() - xact_start))::float8 AS max_tx_duration \
                       FROM pg_stat_activity GROUP BY datname, state) AS tmp2 \
              ON tmp.state = tmp2.state AND pg_database.datname = tmp2.datname",
        columns: &[
            ("datname", Label),
            ("state", Label),
            ("count", Gauge("number of connections in this state")),
            (
                "max_tx_duration",
                Gauge("max duration in seconds any active transaction has been running"),
            ),
        ],
    },
    View {
        namespace: "pg_stat_replication",
        query: "SELECT *, \
                (CASE pg_is_in_recovery() WHEN 't' THEN NULL ELSE pg_current_wal_lsn() END) AS pg_current_wal_lsn, \
                (CASE pg_is_in_recovery() WHEN 't' THEN NULL \
                 ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), pg_lsn('0/0'))::float8 END) AS pg_current_wal_lsn_bytes, \
                (CASE pg_is_in_recovery() WHEN 't' THEN NULL \
                 ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 END) AS pg_wal_lsn_diff \
            FROM pg_stat_replication",
        columns: &[
            ("pid", Discard),
            ("usesysid", Discard),
            ("usename", Discard),
            ("application_name", Label),
            ("client_addr", Label),
            ("client_hostname", Discard),
            ("client_port", Discard),
            ("backend_start", Discard),
            ("backend_xmin", Discard),
            ("state", Label),
            ("sent_lsn", Discard),
            ("write_lsn", Discard),
            ("flush_lsn", Discard),
            ("replay_lsn", Discard),
            ("write_lag", Discard),
            ("flush_lag", Discard),
            ("replay_lag", Discard),
            ("sync_priority", Discard),
            ("sync_state", Discard),
            ("slot_name", Label),
            ("pg_current_wal_lsn", Discard),
            ("pg_current_wal_lsn_bytes", Gauge("WAL position in bytes")),
            (
                "pg_wal_lsn_diff",
                Gauge("Lag in bytes between master and slave"),
            ),
        ],
    },
    View {
        namespace: "pg_replication_slots",
        // On a replica `pg_current_wal_lsn()` fails; the lag is then NULL (NaN).
        query: "SELECT slot_name, database, active, \
                (CASE pg_is_in_recovery() WHEN 't' THEN NULL \
                 ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 END) AS pg_wal_lsn_diff \
            FROM pg_replication_slots",
        columns: &[
            ("slot_name", Label),
            ("database", Label),
            ("active", Gauge("Flag indicating if the slot is active")),
            ("pg_wal_lsn_diff", Gauge("Replication lag in bytes")),
        ],
    },
    View {
        namespace: "pg_stat_archiver",
        query: "SELECT *, extract(epoch from now() - last_archived_time)::float8 AS last_archive_age \
            FROM pg_stat_archiver",
        columns: &[
            (
                "archived_count",
                Counter("Number of WAL files that have been successfully archived"),
            ),
            ("last_archived_wal", Discard),
            ("last_archived_time", Discard),
            (
                "failed_count",
                Counter("Number of failed attempts for archiving WAL files"),
            ),
            ("last_failed_wal", Discard),
            ("last_failed_time", Discard),
            ("stats_reset", Discard),
            (
                "last_archive_age",
                Gauge("Time in seconds since last WAL segment was successfully archived"),
            ),
        ],
    },
];

/// `pg_up`: whether the last run could read the server.
pub fn up(up: bool) -> Family {
    Family::gauge(
        "pg_up",
        "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).",
    )
    .with(Vec::new(), f64::from(u8::from(up)))
}

/// A cell as postgres_exporter's `dbToFloat64` reads it: NULL is `NaN`, text that is not
/// a number is nothing.
fn number(value: &Value) -> Option<f64> {
    match value.to_number() {
        Ok(Some(number)) => Some(number.value),
        Ok(None) => Some(f64::NAN),
        Err(_) => None,
    }
}

/// The cell of `column` in `row`, if the result has that column.
fn cell<'a>(result: &ResultSet, row: &'a [Value], column: &str) -> Option<&'a Value> {
    let at = result.columns.iter().position(|c| c == column)?;
    row.get(at)
}

/// `SERVER` → `pg_static`, start time and replication state.
pub fn server(result: &ResultSet, out: &mut Families) {
    let Some(row) = result.rows.first() else {
        return;
    };
    if let Some(Value::Text(version)) = cell(result, row, "version") {
        out.push(
            "pg_static",
            "Version string as reported by postgres",
            Kind::Untyped,
            labels([
                ("version", version.as_str()),
                ("short_version", &short_version(version)),
            ]),
            1.0,
        );
    }
    let gauges: [(&str, &str, &'static str); 4] = [
        (
            "start_time_seconds",
            "pg_postmaster_start_time_seconds",
            "Time at which postmaster started",
        ),
        (
            "is_replica",
            "pg_replication_is_replica",
            "Indicates if the server is a replica",
        ),
        (
            "lag",
            "pg_replication_lag_seconds",
            "Replication lag behind master in seconds",
        ),
        (
            "last_replay",
            "pg_replication_last_replay_seconds",
            "Age of last replay in seconds",
        ),
    ];
    for (column, name, help) in gauges {
        // A primary has no last replay: no sample rather than NaN.
        if let Some(value) = cell(result, row, column).filter(|v| **v != Value::Null) {
            if let Some(value) = number(value) {
                out.push(name, help, Kind::Gauge, Vec::new(), value);
            }
        }
    }
}

/// `PostgreSQL 15.4 (Debian …) on x86_64…` → `15.4.0`, as postgres_exporter reads it
/// (the number after the first word, padded to three parts; `16beta1` → `16.0.0`).
pub fn short_version(version: &str) -> String {
    let number = version.split_whitespace().nth(1).unwrap_or_default();
    let mut parts: Vec<String> = number
        .split('.')
        .take(3)
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                "0".into()
            } else {
                digits
            }
        })
        .collect();
    parts.resize(3, "0".into());
    parts.join(".")
}

/// A mapped view's result → families.
pub fn view(view: &View, result: &ResultSet, out: &mut Families) {
    let mapping = |column: &str| {
        view.columns
            .iter()
            .find(|(name, _)| *name == column)
            .map(|&(_, usage)| usage)
    };
    let label_names: Vec<&'static str> = view
        .columns
        .iter()
        .filter(|(_, usage)| matches!(usage, Label))
        .map(|&(name, _)| name)
        .collect();
    for row in &result.rows {
        let labels: Labels = label_names
            .iter()
            .map(|&name| {
                let value = cell(result, row, name).map(Value::to_label);
                (Cow::Borrowed(name), value.unwrap_or_default())
            })
            .collect();
        for (column, value) in result.columns.iter().zip(row) {
            let (kind, help): (Kind, Cow<'static, str>) = match mapping(column) {
                Some(Label | Discard) => continue,
                Some(Gauge(help)) => (Kind::Gauge, help.into()),
                Some(Counter(help)) => (Kind::LegacyCounter, help.into()),
                None => (
                    Kind::Untyped,
                    format!("Unknown metric from {}", view.namespace).into(),
                ),
            };
            let Some(value) = number(value) else {
                continue;
            };
            out.push(
                &format!("{}_{column}", view.namespace),
                help,
                kind,
                labels.clone(),
                value,
            );
        }
    }
}

/// `DATABASE_SIZE` → `pg_database_size_bytes{datname}`.
pub fn database_size(result: &ResultSet, out: &mut Families) {
    for row in &result.rows {
        let (Some(name), Some(size)) = (
            cell(result, row, "datname"),
            cell(result, row, "size").and_then(number),
        ) else {
            continue;
        };
        out.push(
            "pg_database_size_bytes",
            "Disk space used by the database",
            Kind::Gauge,
            labels([("datname", &name.to_label())]),
            size,
        );
    }
}

/// `BGWRITER` → `pg_stat_bgwriter_<column>_total` counters (`stats_reset` in Unix
/// seconds); columns a server version lacks are simply absent.
pub fn bgwriter(result: &ResultSet, out: &mut Families) {
    const HELP: [(&str, &str); 11] = [
        (
            "checkpoints_timed",
            "Number of scheduled checkpoints that have been performed",
        ),
        (
            "checkpoints_req",
            "Number of requested checkpoints that have been performed",
        ),
        (
            "checkpoint_write_time",
            "Total amount of time that has been spent in the portion of checkpoint processing where files are written to disk, in milliseconds",
        ),
        (
            "checkpoint_sync_time",
            "Total amount of time that has been spent in the portion of checkpoint processing where files are synchronized to disk, in milliseconds",
        ),
        (
            "buffers_checkpoint",
            "Number of buffers written during checkpoints",
        ),
        (
            "buffers_clean",
            "Number of buffers written by the background writer",
        ),
        (
            "maxwritten_clean",
            "Number of times the background writer stopped a cleaning scan because it had written too many buffers",
        ),
        (
            "buffers_backend",
            "Number of buffers written directly by a backend",
        ),
        (
            "buffers_backend_fsync",
            "Number of times a backend had to execute its own fsync call (normally the background writer handles those even when the backend does its own write)",
        ),
        ("buffers_alloc", "Number of buffers allocated"),
        (
            "stats_reset",
            "Time at which these statistics were last reset",
        ),
    ];
    let Some(row) = result.rows.first() else {
        return;
    };
    for (column, help) in HELP {
        let Some(value) = cell(result, row, column).and_then(number) else {
            continue;
        };
        let value = if column == "stats_reset" {
            value.floor()
        } else {
            value
        };
        out.push(
            &format!("pg_stat_bgwriter_{column}_total"),
            help,
            Kind::Counter,
            Vec::new(),
            value,
        );
    }
}

/// `SETTINGS` → `pg_settings_<name>`: booleans 1/0, times in seconds and sizes in bytes
/// with the unit appended to the name, as postgres_exporter converts them.
pub fn settings(result: &ResultSet, out: &mut Families) {
    for row in &result.rows {
        let text = |column| match cell(result, row, column) {
            Some(Value::Text(text)) => text.as_str(),
            _ => "",
        };
        let Some((value, unit)) = setting_value(text("setting"), text("unit"), text("vartype"))
        else {
            continue;
        };
        let name = text("name").replace('.', "_");
        let (name, help) = match unit {
            Some(unit) => (
                format!("pg_settings_{name}_{unit}"),
                format!("{} [Units converted to {unit}.]", text("short_desc")),
            ),
            None => (format!("pg_settings_{name}"), text("short_desc").to_owned()),
        };
        out.push(&name, help, Kind::Gauge, Vec::new(), value);
    }
}

/// One setting's value in base units, and the unit's name (`seconds`, `bytes`) if it
/// has one; `None` for a value or unit postgres_exporter does not read.
pub fn setting_value(
    setting: &str,
    unit: &str,
    vartype: &str,
) -> Option<(f64, Option<&'static str>)> {
    if vartype == "bool" {
        return Some((f64::from(u8::from(setting == "on")), None));
    }
    let value: f64 = setting.parse().ok()?;
    let (name, scale) = match unit {
        "" => return Some((value, None)),
        "ms" => ("seconds", 0.001),
        "s" => ("seconds", 1.0),
        "min" => ("seconds", 60.0),
        "h" => ("seconds", 3600.0),
        "d" => ("seconds", 86_400.0),
        "B" => ("bytes", 1.0),
        "kB" => ("bytes", 1024.0),
        "MB" => ("bytes", 1024.0 * 1024.0),
        "GB" => ("bytes", 1024.0 * 1024.0 * 1024.0),
        "TB" => ("bytes", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        "8kB" => ("bytes", 8192.0),
        "16kB" => ("bytes", 16_384.0),
        "32kB" => ("bytes", 32_768.0),
        "16MB" => ("bytes", 16.0 * 1024.0 * 1024.0),
        "32MB" => ("bytes", 32.0 * 1024.0 * 1024.0),
        "64MB" => ("bytes", 64.0 * 1024.0 * 1024.0),
        _ => return None,
    };
    // -1 means "disabled" and stays -1.
    let value = if value == -1.0 { value } else { value * scale };
    Some((value, Some(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(columns: &[&str], rows: Vec<Vec<Value>>) -> ResultSet {
        ResultSet {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
        }
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn find<'a>(families: &'a [Family], name: &str) -> &'a Family {
        families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name} in {families:?}"))
    }

    #[test]
    fn versions_read_as_postgres_exporter_reads_them() {
        assert_eq!(
            short_version("PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu"),
            "15.20.0"
        );
        assert_eq!(short_version("PostgreSQL 9.6.24 on x86_64"), "9.6.24");
        assert_eq!(short_version("PostgreSQL 16beta1 on x86_64"), "16.0.0");
    }

    #[test]
    fn settings_convert_units_and_booleans() {
        assert_eq!(
            setting_value("16384", "8kB", "integer"),
            Some((134_217_728.0, Some("bytes")))
        );
        assert_eq!(
            setting_value("200", "ms", "integer"),
            Some((0.2, Some("seconds")))
        );
        assert_eq!(
            setting_value("-1", "ms", "integer"),
            Some((-1.0, Some("seconds")))
        );
        assert_eq!(
            setting_value("5", "min", "integer"),
            Some((300.0, Some("seconds")))
        );
        assert_eq!(setting_value("on", "", "bool"), Some((1.0, None)));
        assert_eq!(setting_value("off", "", "bool"), Some((0.0, None)));
        assert_eq!(setting_value("0.9", "", "real"), Some((0.9, None)));
        assert_eq!(setting_value("3", "furlongs", "integer"), None);
        let mut out = Families::default();
        settings(
            &result(
                &["name", "setting", "unit", "short_desc", "vartype"],
                vec![
                    vec![
                        text("shared_buffers"),
                        text("16384"),
                        text("8kB"),
                        text("Sets the number of shared memory buffers used by the server."),
                        text("integer"),
                    ],
                    vec![
                        text("pg_stat_statements.max"),
                        text("5000"),
                        text(""),
                        text("Max statements."),
                        text("integer"),
                    ],
                ],
            ),
            &mut out,
        );
        let families = out.into_vec();
        let buffers = find(&families, "pg_settings_shared_buffers_bytes");
        assert_eq!(buffers.samples[0].value, 134_217_728.0);
        assert_eq!(
            buffers.help,
            "Sets the number of shared memory buffers used by the server. [Units converted to bytes.]"
        );
        assert_eq!(
            find(&families, "pg_settings_pg_stat_statements_max").samples[0].value,
            5000.0
        );
    }

    #[test]
    fn views_map_labels_counters_gauges_and_unknown_columns() {
        let mut out = Families::default();
        let stat_database = &VIEWS[0];
        view(
            stat_database,
            &result(
                &[
                    "datid",
                    "datname",
                    "numbackends",
                    "blks_hit",
                    "stats_reset",
                    "session_time",
                    "some_text",
                ],
                vec![
                    vec![
                        Value::UInt(5),
                        text("postgres"),
                        Value::Int(2),
                        Value::Int(42),
                        Value::Time(1.7e9),
                        Value::Float(1.5),
                        text("x"),
                    ],
                    vec![
                        Value::UInt(0),
                        Value::Null,
                        Value::Int(0),
                        Value::Int(7),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                    ],
                ],
            ),
            &mut out,
        );
        let families = out.into_vec();
        let hits = find(&families, "pg_stat_database_blks_hit");
        assert_eq!(hits.kind, Kind::LegacyCounter);
        assert_eq!(
            hits.samples[0].labels,
            labels([("datid", "5"), ("datname", "postgres")])
        );
        assert_eq!(
            hits.samples[1].labels,
            labels([("datid", "0"), ("datname", "")])
        );
        assert_eq!(
            find(&families, "pg_stat_database_numbackends").kind,
            Kind::Gauge
        );
        let session = find(&families, "pg_stat_database_session_time");
        assert_eq!(session.kind, Kind::Untyped);
        assert_eq!(session.help, "Unknown metric from pg_stat_database");
        assert!(session.samples[1].value.is_nan(), "NULL is NaN");
        assert_eq!(
            find(&families, "pg_stat_database_stats_reset").samples[0].value,
            1.7e9
        );
        // Text that is not a number is no sample; NULL still is NaN.
        let some_text = find(&families, "pg_stat_database_some_text");
        assert_eq!(some_text.samples.len(), 1);
        assert!(!families.iter().any(|f| f.name.ends_with("_datid")));
    }

    #[test]
    fn server_row_gives_static_and_replication() {
        let mut out = Families::default();
        server(
            &result(
                &[
                    "version",
                    "start_time_seconds",
                    "is_replica",
                    "lag",
                    "last_replay",
                ],
                vec![vec![
                    text("PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu"),
                    Value::Float(1.7e9),
                    Value::Bool(false),
                    Value::Int(0),
                    Value::Null,
                ]],
            ),
            &mut out,
        );
        let families = out.into_vec();
        assert_eq!(
            find(&families, "pg_static").samples[0].labels,
            labels([
                (
                    "version",
                    "PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu"
                ),
                ("short_version", "15.20.0")
            ])
        );
        assert_eq!(
            find(&families, "pg_replication_is_replica").samples[0].value,
            0.0
        );
        assert_eq!(
            find(&families, "pg_replication_lag_seconds").samples[0].value,
            0.0
        );
        assert!(
            !families
                .iter()
                .any(|f| f.name == "pg_replication_last_replay_seconds")
        );
    }
}
