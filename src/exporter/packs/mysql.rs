//! The `mysql` pack: what mysqld_exporter's default collectors give, under its names,
//! label names and types, so its dashboards and mixin alerts work unchanged.
//!
//! - `SHOW GLOBAL STATUS` → `mysql_global_status_<name>` (untyped), with mysqld_exporter's
//!   labelled families for `Com_*` (`commands_total{command}`), `Handler_*`
//!   (`handlers_total{handler}`), `Connection_errors_*`, `Innodb_buffer_pool_pages_*`
//!   (`buffer_pool_pages{state}`, `buffer_pool_dirty_pages`,
//!   `buffer_pool_page_changes_total{operation}`), `Innodb_rows_*` and
//!   `Performance_schema_*_lost`.
//! - `SHOW GLOBAL VARIABLES` → `mysql_global_variables_<name>` (gauges), plus
//!   `mysql_version_info{innodb_version,version,version_comment}` and
//!   `mysql_transaction_isolation{level}`.
//! - `SHOW ALL SLAVES STATUS` (MariaDB) or `SHOW SLAVE STATUS` →
//!   `mysql_slave_status_<column>{master_host,master_uuid,channel_name,connection_name}`
//!   on replicas.
//!
//! Values are read as mysqld_exporter reads them: numbers; `ON`/`YES`/`Primary` 1;
//! `OFF`/`NO`/`DISABLED`/`Connecting`/`non-Primary`/`Disconnected` 0; date-times as Unix
//! seconds; anything else is skipped. Names are lower-cased with every character outside
//! `[a-zA-Z0-9_]` replaced by `_`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use super::Families;
use crate::exporter::family::{Family, Kind, Labels, labels};
use crate::exporter::sql::rows::ResultSet;
use crate::exporter::sql::value::Value;

/// The statements of one run, in order; the first failing ends the run with `mysql_up 0`
/// unless it is only the replica status (absent privileges, or not a replica).
pub const GLOBAL_STATUS: &str = "SHOW GLOBAL STATUS";
pub const GLOBAL_VARIABLES: &str = "SHOW GLOBAL VARIABLES";
/// Tried in order: MariaDB's form lists every replication connection.
pub const SLAVE_STATUS: [&str; 3] = [
    "SHOW ALL SLAVES STATUS",
    "SHOW SLAVE STATUS",
    "SHOW REPLICA STATUS",
];

/// `mysql_up`: whether the last run could read the server's status.
pub fn up(up: bool) -> Family {
    Family::gauge("mysql_up", "Whether the MySQL server is up.")
        .with(Vec::new(), f64::from(u8::from(up)))
}

/// The text of a cell, as the server sent it.
fn text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::Text(s) | Value::Decimal(s) => Some(Cow::Borrowed(s)),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b)),
        other => Some(Cow::Owned(other.to_label())),
    }
}

/// A status or variable value as mysqld_exporter's `parseStatus` reads it.
pub fn parse_status(raw: &str) -> Option<f64> {
    match raw.to_ascii_lowercase().as_str() {
        "yes" | "on" | "primary" => return Some(1.0),
        "no" | "off" | "disabled" | "connecting" | "non-primary" | "disconnected" => {
            return Some(0.0);
        }
        _ => {}
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S") {
        #[allow(clippy::cast_precision_loss)]
        return Some(at.and_utc().timestamp() as f64);
    }
    // Certificate dates (`Ssl_server_not_after`): `Jan  1 00:00:00 2030 GMT`.
    if let Some(at) = raw
        .strip_suffix(" GMT")
        .or_else(|| raw.strip_suffix(" UTC"))
        .and_then(|at| NaiveDateTime::parse_from_str(at, "%b %e %H:%M:%S %Y").ok())
    {
        #[allow(clippy::cast_precision_loss)]
        return Some(at.and_utc().timestamp() as f64);
    }
    raw.parse::<f64>().ok()
}

/// A status or variable name as a metric name part.
pub fn metric_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The two columns of a `SHOW … STATUS/VARIABLES` result.
fn pairs(result: &ResultSet) -> impl Iterator<Item = (String, Cow<'_, str>)> {
    result.rows.iter().filter_map(|row| match row.as_slice() {
        [key, value, ..] => Some((metric_name(&text(key)?), text(value)?)),
        _ => None,
    })
}

/// `SHOW GLOBAL STATUS` → families.
pub fn global_status(result: &ResultSet, out: &mut Families) {
    const LABELLED: [(&str, &str, &str, &str); 5] = [
        (
            "com_",
            "mysql_global_status_commands_total",
            "command",
            "Total number of executed MySQL commands.",
        ),
        (
            "handler_",
            "mysql_global_status_handlers_total",
            "handler",
            "Total number of executed MySQL handlers.",
        ),
        (
            "connection_errors_",
            "mysql_global_status_connection_errors_total",
            "error",
            "Total number of MySQL connection errors.",
        ),
        (
            "innodb_rows_",
            "mysql_global_status_innodb_row_ops_total",
            "operation",
            "Total number of MySQL InnoDB row operations.",
        ),
        (
            "performance_schema_",
            "mysql_global_status_performance_schema_lost_total",
            "instrumentation",
            "Total number of MySQL instrumentations that could not be loaded or created due to memory constraints.",
        ),
    ];
    for (key, raw) in pairs(result) {
        let Some(value) = parse_status(&raw) else {
            continue;
        };
        if let Some(page) = key.strip_prefix("innodb_buffer_pool_pages_") {
            match page {
                "data" | "free" | "misc" | "old" => out.push(
                    "mysql_global_status_buffer_pool_pages",
                    "Innodb buffer pool pages by state.",
                    Kind::Gauge,
                    labels([("state", page)]),
                    value,
                ),
                "dirty" => out.push(
                    "mysql_global_status_buffer_pool_dirty_pages",
                    "Innodb buffer pool dirty pages.",
                    Kind::Gauge,
                    Vec::new(),
                    value,
                ),
                "total" => {}
                _ => out.push(
                    "mysql_global_status_buffer_pool_page_changes_total",
                    "Innodb buffer pool page state changes.",
                    Kind::Counter,
                    labels([("operation", page)]),
                    value,
                ),
            }
            continue;
        }
        let labelled = LABELLED.iter().find_map(|&(prefix, name, label, help)| {
            Some((key.strip_prefix(prefix)?, name, label, help))
        });
        match labelled {
            Some((rest, name, label, help)) => {
                out.push(name, help, Kind::Counter, labels([(label, rest)]), value)
            }
            None => out.push(
                &format!("mysql_global_status_{key}"),
                "Generic metric from SHOW GLOBAL STATUS.",
                Kind::Untyped,
                Vec::new(),
                value,
            ),
        }
    }
}

/// `SHOW GLOBAL VARIABLES` → families, `mysql_version_info` and
/// `mysql_transaction_isolation`.
pub fn global_variables(result: &ResultSet, out: &mut Families) {
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    for (key, raw) in pairs(result) {
        if let Some(value) = parse_status(&raw) {
            out.push(
                &format!("mysql_global_variables_{key}"),
                "Generic gauge metric from SHOW GLOBAL VARIABLES.",
                Kind::Gauge,
                Vec::new(),
                value,
            );
        } else if matches!(
            key.as_str(),
            "innodb_version"
                | "version"
                | "version_comment"
                | "transaction_isolation"
                | "tx_isolation"
                | "wsrep_cluster_name"
                | "wsrep_provider_options"
        ) {
            texts.insert(key, raw.into_owned());
        }
    }
    let get = |key: &str| texts.get(key).map_or("", String::as_str);
    out.push(
        "mysql_version_info",
        "MySQL version and distribution.",
        Kind::Gauge,
        labels([
            ("innodb_version", get("innodb_version")),
            ("version", get("version")),
            ("version_comment", get("version_comment")),
        ]),
        1.0,
    );
    if !get("wsrep_cluster_name").is_empty() {
        out.push(
            "mysql_galera_variables_info",
            "PXC/Galera variables information.",
            Kind::Gauge,
            labels([("wsrep_cluster_name", get("wsrep_cluster_name"))]),
            1.0,
        );
    }
    if !get("wsrep_provider_options").is_empty() {
        out.push(
            "mysql_galera_gcache_size_bytes",
            "PXC/Galera gcache size.",
            Kind::Gauge,
            Vec::new(),
            gcache_size(get("wsrep_provider_options")),
        );
    }
    let level = match get("transaction_isolation") {
        "" => get("tx_isolation"),
        level => level,
    };
    if !level.is_empty() {
        out.push(
            "mysql_transaction_isolation",
            "MySQL transaction isolation.",
            Kind::Gauge,
            labels([("level", level)]),
            1.0,
        );
    }
}

/// `gcache.size = 128M;` in `wsrep_provider_options`, in bytes (0 when absent).
fn gcache_size(options: &str) -> f64 {
    let Some(rest) = options.split("gcache.size = ").nth(1) else {
        return 0.0;
    };
    let size = rest.split(';').next().unwrap_or_default();
    let (digits, unit) = size.split_at(
        size.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(size.len()),
    );
    let scale = match unit {
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "" => 1.0,
        _ => return 0.0,
    };
    digits.parse::<f64>().map_or(0.0, |n| n * scale)
}

/// `SHOW SLAVE STATUS` (one row per replication connection) → families.
pub fn slave_status(result: &ResultSet, out: &mut Families) {
    let column = |row: &[Value], names: &[&str]| -> String {
        names
            .iter()
            .find_map(|name| {
                let at = result.columns.iter().position(|c| c == name)?;
                text(row.get(at)?)
                    .map(Cow::into_owned)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_default()
    };
    for row in &result.rows {
        let identity = [
            ("master_host", column(row, &["Master_Host", "Source_Host"])),
            ("master_uuid", column(row, &["Master_UUID", "Source_UUID"])),
            ("channel_name", column(row, &["Channel_Name"])),
            ("connection_name", column(row, &["Connection_name"])),
        ];
        for (name, cell) in result.columns.iter().zip(row) {
            let Some(value) = text(cell).as_deref().and_then(parse_status) else {
                continue;
            };
            let labels: Labels = identity
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
                .collect();
            out.push(
                &format!("mysql_slave_status_{}", name.to_lowercase()),
                "Generic metric from SHOW SLAVE STATUS.",
                Kind::Untyped,
                labels,
                value,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rows: &[(&str, &str)]) -> ResultSet {
        ResultSet {
            columns: vec!["Variable_name".into(), "Value".into()],
            rows: rows
                .iter()
                .map(|(k, v)| vec![Value::Text((*k).into()), Value::Text((*v).into())])
                .collect(),
        }
    }

    fn sample<'a>(families: &'a [Family], name: &str) -> Vec<(&'a Labels, f64)> {
        families
            .iter()
            .filter(|f| f.name == name)
            .flat_map(|f| f.samples.iter().map(|s| (&s.labels, s.value)))
            .collect()
    }

    #[test]
    fn values_read_as_mysqld_exporter_reads_them() {
        assert_eq!(parse_status("ON"), Some(1.0));
        assert_eq!(parse_status("Connecting"), Some(0.0));
        assert_eq!(parse_status("12.5"), Some(12.5));
        assert_eq!(parse_status("2024-01-02 03:04:05"), Some(1_704_164_645.0));
        assert_eq!(parse_status("mysql-bin.000123"), None);
        assert_eq!(parse_status(""), None);
        assert_eq!(parse_status("utf8mb4"), None);
        assert_eq!(
            parse_status("Jan  1 00:00:00 2030 GMT"),
            Some(1_893_456_000.0)
        );
        assert_eq!(
            metric_name("Innodb_buffer_pool_pages.data"),
            "innodb_buffer_pool_pages_data"
        );
    }

    #[test]
    fn status_becomes_mysqld_exporters_families() {
        let mut out = Families::default();
        global_status(
            &result(&[
                ("Com_select", "10"),
                ("Com_insert", "2"),
                ("Handler_read_rnd", "3"),
                ("Innodb_buffer_pool_pages_data", "100"),
                ("Innodb_buffer_pool_pages_dirty", "4"),
                ("Innodb_buffer_pool_pages_total", "200"),
                ("Innodb_buffer_pool_pages_flushed", "9"),
                ("Innodb_rows_read", "50"),
                ("Threads_connected", "5"),
                ("Slave_running", "OFF"),
                ("Rpl_status", "AUTH_MASTER"),
            ]),
            &mut out,
        );
        let families = out.into_vec();
        let commands = sample(&families, "mysql_global_status_commands");
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0].0, &labels([("command", "select")]));
        let family = |name: &str| families.iter().find(|f| f.name == name).map(|f| f.kind);
        assert_eq!(family("mysql_global_status_commands"), Some(Kind::Counter));
        assert_eq!(
            family("mysql_global_status_threads_connected"),
            Some(Kind::Untyped)
        );
        assert_eq!(
            family("mysql_global_status_buffer_pool_pages"),
            Some(Kind::Gauge)
        );
        assert_eq!(
            sample(&families, "mysql_global_status_buffer_pool_dirty_pages")[0].1,
            4.0
        );
        assert_eq!(
            sample(&families, "mysql_global_status_buffer_pool_page_changes")[0].0,
            &labels([("operation", "flushed")])
        );
        assert_eq!(
            sample(&families, "mysql_global_status_slave_running")[0].1,
            0.0
        );
        assert!(
            family("mysql_global_status_rpl_status").is_none(),
            "text is skipped"
        );
        assert!(!families.iter().any(|f| f.name.contains("pages_total")));
    }

    #[test]
    fn variables_give_version_info_and_isolation() {
        let mut out = Families::default();
        global_variables(
            &result(&[
                ("max_connections", "151"),
                ("innodb_version", "10.11.6"),
                ("version", "10.11.6-MariaDB-0+deb12u1"),
                ("version_comment", "Debian 12"),
                ("tx_isolation", "REPEATABLE-READ"),
                ("read_only", "OFF"),
            ]),
            &mut out,
        );
        let families = out.into_vec();
        assert_eq!(
            sample(&families, "mysql_global_variables_max_connections")[0].1,
            151.0
        );
        assert_eq!(
            sample(&families, "mysql_global_variables_read_only")[0].1,
            0.0
        );
        let info = sample(&families, "mysql_version_info");
        assert_eq!(
            info[0].0,
            &labels([
                ("innodb_version", "10.11.6"),
                ("version", "10.11.6-MariaDB-0+deb12u1"),
                ("version_comment", "Debian 12")
            ])
        );
        assert_eq!(
            sample(&families, "mysql_transaction_isolation")[0].0,
            &labels([("level", "REPEATABLE-READ")])
        );
    }

    #[test]
    fn replica_columns_carry_the_connection_labels() {
        let result = ResultSet {
            columns: vec![
                "Connection_name".into(),
                "Master_Host".into(),
                "Slave_IO_Running".into(),
                "Seconds_Behind_Master".into(),
                "Master_Log_File".into(),
            ],
            rows: vec![vec![
                Value::Text("main".into()),
                Value::Text("db1".into()),
                Value::Text("Yes".into()),
                Value::Int(3),
                Value::Text("mysql-bin.000001".into()),
            ]],
        };
        let mut out = Families::default();
        slave_status(&result, &mut out);
        let families = out.into_vec();
        let running = sample(&families, "mysql_slave_status_slave_io_running");
        assert_eq!(running[0].1, 1.0);
        assert_eq!(
            running[0].0,
            &labels([
                ("master_host", "db1"),
                ("master_uuid", ""),
                ("channel_name", ""),
                ("connection_name", "main")
            ])
        );
        assert_eq!(
            sample(&families, "mysql_slave_status_seconds_behind_master")[0].1,
            3.0
        );
        assert!(sample(&families, "mysql_slave_status_master_log_file").is_empty());
    }
}
