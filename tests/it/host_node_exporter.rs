//! lookout's host metrics are node_exporter's: at least 95 % of the `node_*` families
//! `prometheus-node-exporter` serves on the same machine are served by lookout with the
//! same TYPE and label names (the test prints matched/total and what is missing); every
//! `node_*` name lookout serves exists there with the same TYPE, label names and series;
//! the host's constants are equal; and the other values agree within what the metric can
//! drift between two reads.

use std::collections::BTreeMap;

use crate::support::{
    Exposition, Labels, Lookout, NodeExporter, http_get, lookout::HOST_ONLY_CONFIG,
};

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

/// node_exporter's families that describe node_exporter itself, not the host.
const NOT_HOST: &[&str] = &["node_exporter_build_info"];

/// SPEC §6.8: the share of node_exporter's families lookout must serve alike.
const PARITY: f64 = 0.95;

#[test]
fn lookout_serves_at_least_95_percent_of_node_exporter_families() {
    let Some(node_exporter) = NodeExporter::start() else {
        return;
    };
    let lookout = Lookout::start(HOST_ONLY_CONFIG);
    let theirs = node_exporter.scrape();
    let ours = scrape_lookout(&lookout);

    let families: Vec<(&String, &String)> = theirs
        .types
        .iter()
        .filter(|(name, _)| name.starts_with("node_") && !NOT_HOST.contains(&name.as_str()))
        .collect();
    let mut unmatched = Vec::new();
    for (family, their_type) in &families {
        let Some(our_type) = ours.types.get(*family) else {
            unmatched.push(format!("{family}: missing"));
            continue;
        };
        if our_type != *their_type {
            unmatched.push(format!(
                "{family}: TYPE {our_type} in lookout, {their_type} in node_exporter"
            ));
            continue;
        }
        let (our_labels, their_labels) = (label_names(&ours, family), label_names(&theirs, family));
        if our_labels != their_labels {
            unmatched.push(format!(
                "{family}: label names {our_labels:?} in lookout, {their_labels:?} in node_exporter"
            ));
        }
    }
    let total = families.len();
    let matched = total - unmatched.len();
    let share = matched as f64 / total.max(1) as f64;
    println!(
        "lookout matches {matched}/{total} node_exporter families ({:.1} %)",
        share * 100.0
    );
    for line in &unmatched {
        println!("  unmatched {line}");
    }
    assert!(total >= 50, "node_exporter served only {total} families");
    assert!(
        share >= PARITY,
        "lookout matches {matched}/{total} node_exporter families, below {:.0} %:\n{}",
        PARITY * 100.0,
        unmatched.join("\n")
    );
}

/// The label-name sets of a family's samples (`x`, or `x_total` for a counter).
fn label_names(exposition: &Exposition, family: &str) -> std::collections::BTreeSet<Vec<String>> {
    let total = format!("{family}_total");
    let sample = if exposition.get(family).is_empty() {
        total.as_str()
    } else {
        family
    };
    exposition.label_name_sets(sample)
}

/// The host's constants are the same number in both: memory size, the file-descriptor
/// limit, the entropy pool, every interface's MTU, and the OS release.
#[test]
fn static_values_are_equal() {
    let Some(node_exporter) = NodeExporter::start() else {
        return;
    };
    let lookout = Lookout::start(HOST_ONLY_CONFIG);
    let theirs = node_exporter.scrape();
    let ours = scrape_lookout(&lookout);
    for name in [
        "node_memory_MemTotal_bytes",
        "node_filefd_maximum",
        "node_entropy_pool_size_bits",
        "node_network_mtu_bytes",
        "node_os_info",
        "node_os_version",
        "node_uname_info",
    ] {
        let their_series = theirs.get(name);
        assert!(
            !their_series.is_empty(),
            "node_exporter does not serve {name} here"
        );
        assert_eq!(
            ours.get(name),
            their_series,
            "{name}: lookout's series and values differ from node_exporter's"
        );
    }
}

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
                let Some(tolerance) = tolerance(name, mem_total) else {
                    continue;
                };
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
/// two reads for counters, a small slack for jittery gauges; `None` for gauges that move
/// both ways faster than two reads can bracket (socket counts, open files, durations).
fn tolerance(name: &str, mem_total: f64) -> Option<Tolerance> {
    const VOLATILE: &[&str] = &[
        "node_scrape_collector_duration_seconds",
        "node_filefd_allocated",
        "node_entropy_available_bits",
        "node_nf_conntrack_entries",
        "node_udp_queues",
        "node_disk_io_now",
        "node_arp_entries",
        "node_netstat_Tcp_CurrEstab",
        "node_timex_offset_seconds",
        "node_timex_frequency_adjustment_ratio",
        "node_timex_maxerror_seconds",
        "node_timex_estimated_error_seconds",
    ];
    if VOLATILE.contains(&name) || name.starts_with("node_sockstat_") {
        return None;
    }
    Some(match name {
        "node_memory_MemTotal_bytes"
        | "node_memory_SwapTotal_bytes"
        | "node_memory_VmallocTotal_bytes"
        | "node_memory_Hugepagesize_bytes"
        | "node_memory_HugePages_Total"
        | "node_filesystem_size_bytes"
        | "node_filesystem_files"
        | "node_filesystem_readonly"
        | "node_filesystem_device_error"
        | "node_uname_info"
        | "node_os_info"
        | "node_os_version"
        | "node_filefd_maximum"
        | "node_entropy_pool_size_bits"
        | "node_nf_conntrack_entries_limit"
        | "node_scrape_collector_success"
        | "node_textfile_scrape_error"
        | "node_selinux_enabled"
        | "node_time_zone_offset_seconds"
        | "node_time_clocksource_available_info"
        | "node_time_clocksource_current_info"
        | "node_timex_tick_seconds"
        | "node_disk_info"
        | "node_network_info"
        | "node_network_up"
        | "node_network_mtu_bytes"
        | "node_network_speed_bytes"
        | "node_network_flags"
        | "node_network_iface_id"
        | "node_network_protocol_type" => Tolerance::Exact,
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
        // Counters other processes drive (paging, packets): two reads bracket them.
        _ if name.starts_with("node_vmstat_") || name.starts_with("node_netstat_") => {
            Tolerance::Between(1_000.0)
        }
        _ if name.starts_with("node_pressure_") => Tolerance::Between(0.5),
        _ if name.ends_with("_bytes_total") => Tolerance::Between(4.0 * MIB),
        _ if name.ends_with("_seconds_total") => Tolerance::Between(0.5),
        _ if name.ends_with("_total") => Tolerance::Between(500.0),
        _ => Tolerance::Between(0.0),
    })
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
