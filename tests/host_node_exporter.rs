//! lookout's host metrics are node_exporter's: every `node_*` name lookout serves exists in
//! `prometheus-node-exporter`'s output on the same machine with the same TYPE, label names
//! and series, and the values agree within what the metric can drift between two reads.

mod support;

use std::collections::BTreeMap;

use support::{Exposition, Labels, Lookout, NodeExporter, http_get, lookout::HOST_ONLY_CONFIG};

/// The core subset of SPEC §2 (and the contract's extras). lookout must serve each one
/// that node_exporter serves on this machine.
const CORE: &[&str] = &[
    "node_cpu_seconds_total",
    "node_memory_MemTotal_bytes",
    "node_memory_MemFree_bytes",
    "node_memory_MemAvailable_bytes",
    "node_memory_Buffers_bytes",
    "node_memory_Cached_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_SwapFree_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_free_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_files",
    "node_filesystem_files_free",
    "node_filesystem_readonly",
    "node_filesystem_device_error",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_packets_total",
    "node_network_transmit_packets_total",
    "node_network_receive_errs_total",
    "node_network_transmit_errs_total",
    "node_network_receive_drop_total",
    "node_network_transmit_drop_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_disk_reads_completed_total",
    "node_disk_writes_completed_total",
    "node_disk_io_time_seconds_total",
    "node_disk_read_time_seconds_total",
    "node_disk_write_time_seconds_total",
    "node_load1",
    "node_load5",
    "node_load15",
    "node_boot_time_seconds",
    "node_time_seconds",
    "node_uname_info",
    "node_context_switches_total",
    "node_intr_total",
    "node_forks_total",
    "node_procs_running",
    "node_procs_blocked",
];

/// Value comparisons are retried this many times (each with fresh reads); a series passes
/// if it agrees in any round, so a wrong value fails every round while a burst of host
/// activity during one round does not fail the test.
const ROUNDS: usize = 3;

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn lookout_serves_node_exporter_names_types_labels_and_series() {
    let Some(node_exporter) = NodeExporter::start() else {
        return;
    };
    let lookout = Lookout::start(HOST_ONLY_CONFIG);
    let theirs = node_exporter.scrape();
    let ours = scrape_lookout(&lookout);

    let mut problems = Vec::new();
    for name in CORE {
        if !theirs.get(name).is_empty() && ours.get(name).is_empty() {
            problems.push(format!(
                "{name}: served by node_exporter here, missing in lookout"
            ));
        }
    }
    let names: Vec<&str> = ours.names_with_prefix("node_").collect();
    assert!(
        names.len() >= 10,
        "lookout serves few node_ metrics: {names:?}"
    );
    for name in names {
        if theirs.get(name).is_empty() {
            problems.push(format!("{name}: not a node_exporter metric"));
            continue;
        }
        let (our_type, their_type) = (ours.types.get(name), theirs.types.get(name));
        if our_type != their_type {
            problems.push(format!(
                "{name}: `# TYPE {name}` is {our_type:?} in lookout, {their_type:?} in node_exporter"
            ));
        }
        let (our_labels, their_labels) = (ours.label_name_sets(name), theirs.label_name_sets(name));
        if our_labels != their_labels {
            problems.push(format!(
                "{name}: label names {our_labels:?} in lookout, {their_labels:?} in node_exporter"
            ));
            continue;
        }
        for (labels, _) in ours.get(name) {
            if theirs.value(name, labels).is_none() {
                problems.push(format!("{name}{labels:?}: series not in node_exporter"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn lookout_values_agree_with_node_exporter() {
    let Some(node_exporter) = NodeExporter::start() else {
        return;
    };
    let lookout = Lookout::start(HOST_ONLY_CONFIG);

    // Series key → why it disagreed last; a series leaves the map once it agrees.
    let mut pending: Option<BTreeMap<(String, Labels), String>> = None;
    for _ in 0..ROUNDS {
        let before = node_exporter.scrape();
        let ours = scrape_lookout(&lookout);
        let after = node_exporter.scrape();
        let mem_total = before.scalar("node_memory_MemTotal_bytes").unwrap_or(0.0);

        let compared = ours
            .names_with_prefix("node_")
            .map(|name| ours.get(name).len());
        assert!(
            compared.sum::<usize>() >= 20,
            "lookout serves few node_ series"
        );
        let mut failures = BTreeMap::new();
        for name in ours.names_with_prefix("node_") {
            for (labels, value) in ours.get(name) {
                let key = (name.to_owned(), labels.clone());
                if pending
                    .as_ref()
                    .is_some_and(|pending| !pending.contains_key(&key))
                {
                    continue;
                }
                let (Some(first), Some(second)) =
                    (before.value(name, labels), after.value(name, labels))
                else {
                    failures.insert(key, "series not in node_exporter".to_owned());
                    continue;
                };
                let tolerance = tolerance(name, mem_total);
                if let Err(why) = tolerance.check(*value, first, second) {
                    failures.insert(key, why);
                }
            }
        }
        let done = failures.is_empty();
        pending = Some(failures);
        if done {
            break;
        }
    }
    let failures = pending.expect("at least one round ran");
    let report: Vec<String> = failures
        .iter()
        .map(|((name, labels), why)| format!("{name}{labels:?}: {why}"))
        .collect();
    assert!(
        report.is_empty(),
        "lookout disagrees with node_exporter in {ROUNDS} rounds:\n{}",
        report.join("\n")
    );
}

/// How far lookout's value may be from node_exporter's reads just before and after it.
#[derive(Debug, Clone, Copy)]
enum Tolerance {
    /// Equal to node_exporter's first read (constants of the host).
    Exact,
    /// Within this distance of node_exporter's first read.
    Near(f64),
    /// Between the two reads, widened on both sides by this much.
    Between(f64),
}

impl Tolerance {
    fn check(self, ours: f64, first: f64, second: f64) -> Result<(), String> {
        let (low, high) = match self {
            Tolerance::Exact => (first, first),
            Tolerance::Near(slack) => (first - slack, first + slack),
            Tolerance::Between(slack) => (first.min(second) - slack, first.max(second) + slack),
        };
        if (low..=high).contains(&ours) {
            Ok(())
        } else {
            Err(format!(
                "lookout {ours} outside [{low}, {high}] (node_exporter read {first} then {second}; {self:?})"
            ))
        }
    }
}

/// The tolerance fitting each metric: exact for constants of the host, the drift between
/// two reads for counters, a small slack for jittery gauges.
fn tolerance(name: &str, mem_total: f64) -> Tolerance {
    match name {
        "node_memory_MemTotal_bytes"
        | "node_memory_SwapTotal_bytes"
        | "node_memory_VmallocTotal_bytes"
        | "node_memory_Hugepagesize_bytes"
        | "node_memory_HugePages_Total"
        | "node_filesystem_size_bytes"
        | "node_filesystem_files"
        | "node_filesystem_readonly"
        | "node_filesystem_device_error"
        | "node_uname_info" => Tolerance::Exact,
        // node_exporter reads btime (whole seconds); a computed boot time may round.
        "node_boot_time_seconds" => Tolerance::Near(1.0),
        "node_time_seconds" => Tolerance::Between(1.0),
        "node_load1" | "node_load5" | "node_load15" => Tolerance::Between(0.25),
        // Instantaneous counts of runnable/blocked tasks; the readers themselves run.
        "node_procs_running" | "node_procs_blocked" => Tolerance::Between(8.0),
        "node_forks_total" => Tolerance::Between(50.0),
        "node_context_switches_total" | "node_intr_total" => Tolerance::Between(5_000.0),
        _ if name.starts_with("node_cpu_") => Tolerance::Between(0.5),
        _ if name.starts_with("node_memory_") && name.ends_with("_bytes") => {
            Tolerance::Between((16.0 * MIB).max(mem_total * 0.001))
        }
        _ if name.starts_with("node_memory_") => Tolerance::Between(16.0),
        "node_filesystem_free_bytes" | "node_filesystem_avail_bytes" => {
            Tolerance::Between(16.0 * MIB)
        }
        "node_filesystem_files_free" => Tolerance::Between(5_000.0),
        _ if name.ends_with("_bytes_total") => Tolerance::Between(4.0 * MIB),
        _ if name.ends_with("_seconds_total") => Tolerance::Between(0.5),
        _ if name.ends_with("_total") => Tolerance::Between(500.0),
        _ => Tolerance::Between(0.0),
    }
}

fn scrape_lookout(lookout: &Lookout) -> Exposition {
    let response = http_get(
        &lookout.url("/metrics"),
        &[("Accept", "text/plain;version=0.0.4")],
    )
    .expect("GET lookout /metrics");
    assert_eq!(response.status, 200, "{}", lookout.logs());
    Exposition::parse(&response.text()).expect("lookout's exposition parses")
}
