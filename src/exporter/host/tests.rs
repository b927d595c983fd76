//! Tests of the whole host collector: fixture proc roots, failing sub-collectors, this
//! machine's /proc, the exposition text, and /proc against the sysinfo fallback.

use std::collections::HashSet;
use std::fs;

use prometheus_client::registry::Registry;

use super::*;
use crate::exporter::family::Families;

const PROCFS_COLLECTORS: [&str; 9] = [
    "cpu",
    "meminfo",
    "filesystem",
    "netdev",
    "diskstats",
    "loadavg",
    "stat",
    "time",
    "uname",
];

/// A proc root holding small but realistic copies of every file read.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("net")).unwrap();
    fs::write(
        root.join("stat"),
        "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 10 0 10 100 0 0 0 0 0 0\n\
         intr 5 1 2\nctxt 7\nbtime 1700000000\nprocesses 9\nprocs_running 2\nprocs_blocked 1\n",
    )
    .unwrap();
    fs::write(
        root.join("meminfo"),
        "MemTotal:       1000 kB\nMemFree:         500 kB\nHugePages_Total:       0\n",
    )
    .unwrap();
    // No 1/mounts: the collector falls back to `mounts`, as with hidepid.
    fs::write(
        root.join("mounts"),
        "/dev/vda / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n",
    )
    .unwrap();
    fs::write(
        root.join("net/dev"),
        "h1\nh2\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n  eth0: 9 8 7 6 0 0 0 0 5 4 3 2 0 0 0 0\n",
    )
    .unwrap();
    fs::write(
        root.join("diskstats"),
        " 254 0 vda 1 0 8 3 2 0 16 4 0 5 7 0 0 0 0\n 254 1 vda1 1 0 8 3 2 0 16 4 0 5 7\n",
    )
    .unwrap();
    fs::write(root.join("loadavg"), "0.50 0.25 0.10 1/100 42\n").unwrap();
    dir
}

fn names(report: &HostReport) -> Vec<&'static str> {
    report.collectors.iter().map(|c| c.name).collect()
}

fn value(report: &HostReport, name: &str) -> Option<f64> {
    Some(
        report
            .families
            .iter()
            .find(|f| f.name == name)?
            .samples
            .first()?
            .value,
    )
}

fn encode(report: HostReport) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(report.families)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

/// The value of one series in exposition text (an empty label set may print as `{}`).
fn exposed(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        let rest = rest.strip_prefix("{}").unwrap_or(rest);
        rest.strip_prefix(' ')?.parse().ok()
    })
}

#[test]
fn fixture_root_feeds_every_collector() {
    let dir = fixture();
    let collector = HostCollector::with_proc_root(HostSettings::default(), dir.path());
    assert!(collector.uses_procfs());
    let report = collector.collect();
    assert_eq!(names(&report), PROCFS_COLLECTORS);
    assert!(
        report.collectors.iter().all(|c| c.success),
        "{:?}",
        report.collectors
    );
    assert_eq!(
        value(&report, "node_memory_MemTotal_bytes"),
        Some(1_024_000.0)
    );
    assert_eq!(value(&report, "node_memory_HugePages_Total"), Some(0.0));
    assert_eq!(value(&report, "node_boot_time_seconds"), Some(1.7e9));
    assert_eq!(value(&report, "node_load1"), Some(0.5));
    assert_eq!(value(&report, "node_network_receive_bytes"), Some(9.0));
    assert_eq!(value(&report, "node_disk_read_bytes"), Some(8.0 * 512.0));
    assert_eq!(value(&report, "node_filesystem_device_error"), Some(0.0));
    let size = report
        .families
        .iter()
        .find(|f| f.name == "node_filesystem_size_bytes")
        .unwrap();
    assert_eq!(
        size.samples.len(),
        1,
        "only / survives the default excludes"
    );

    let text = encode(report);
    for (series, want) in [
        ("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}", 1.0),
        ("node_context_switches_total", 7.0),
        ("node_intr_total", 5.0),
        ("node_network_transmit_drop_total{device=\"eth0\"}", 2.0),
        ("node_disk_io_time_seconds_total{device=\"vda\"}", 0.005),
        (
            "node_filesystem_readonly{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"}",
            0.0,
        ),
    ] {
        assert_eq!(exposed(&text, series), Some(want), "{series} in\n{text}");
    }
    assert!(text.contains("# TYPE node_memory_MemFree_bytes gauge"));
    assert!(text.contains("# TYPE node_intr counter"));
    assert!(!text.contains("device=\"lo\""));
    assert!(!text.contains("vda1"));
}

#[test]
fn a_failing_collector_reports_failure_and_nothing_else() {
    let dir = fixture();
    fs::remove_file(dir.path().join("meminfo")).unwrap();
    fs::write(dir.path().join("loadavg"), "garbage\n").unwrap();
    let report = HostCollector::with_proc_root(HostSettings::default(), dir.path()).collect();
    assert_eq!(names(&report), PROCFS_COLLECTORS);
    let failed: Vec<&str> = report
        .collectors
        .iter()
        .filter(|c| !c.success)
        .map(|c| c.name)
        .collect();
    assert_eq!(failed, ["meminfo", "loadavg"]);
    assert!(
        !report
            .families
            .iter()
            .any(|f| f.name.starts_with("node_memory_"))
    );
    assert!(
        !report
            .families
            .iter()
            .any(|f| f.name.starts_with("node_load"))
    );
    assert!(report.families.iter().any(|f| f.name == "node_cpu_seconds"));
}

#[test]
fn without_proc_stat_the_portable_fallback_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let collector = HostCollector::with_proc_root(HostSettings::default(), dir.path());
    assert!(!collector.uses_procfs());
    let report = collector.collect();
    assert!(!names(&report).contains(&"cpu"));
    assert!(
        report
            .families
            .iter()
            .any(|f| f.name == "node_time_seconds")
    );
}

#[test]
fn collector_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HostCollector>();
}

#[test]
fn default_settings_are_node_exporters() {
    let settings = HostSettings::default();
    assert!(
        settings
            .mount_points_exclude
            .is_match("/var/lib/docker/overlay2/x")
    );
    assert!(!settings.mount_points_exclude.is_match("/var/lib/docker"));
    assert!(settings.mount_points_exclude.is_match("/run/user/0"));
    assert!(settings.fs_types_exclude.is_match("cgroup2"));
    assert!(!settings.fs_types_exclude.is_match("tmpfs"));
    assert_eq!(settings.mount_timeout, Duration::from_secs(5));
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    #[test]
    fn this_machine() {
        let collector = HostCollector::new(HostSettings::default());
        assert!(collector.uses_procfs());
        let report = collector.collect();
        assert_eq!(names(&report), PROCFS_COLLECTORS);
        assert!(
            report.collectors.iter().all(|c| c.success),
            "{:?}",
            report.collectors
        );
        let mut seen = HashSet::new();
        for family in &report.families {
            assert!(
                seen.insert(family.name.clone()),
                "duplicate family {}",
                family.name
            );
            let mut label_sets = HashSet::new();
            for sample in &family.samples {
                assert!(
                    label_sets.insert(&sample.labels),
                    "duplicate series in {}",
                    family.name
                );
            }
        }
        for name in [
            "node_cpu_seconds",
            "node_memory_MemAvailable_bytes",
            "node_filesystem_avail_bytes",
            "node_network_receive_packets",
            "node_disk_written_bytes",
            "node_load15",
            "node_procs_running",
            "node_time_seconds",
            "node_uname_info",
        ] {
            assert!(seen.contains(name), "{name} missing");
        }
        let cpus = report
            .families
            .iter()
            .find(|f| f.name == "node_cpu_seconds")
            .unwrap();
        assert!(!cpus.samples.is_empty() && cpus.samples.len() % 8 == 0);
        assert!(!encode(report).is_empty());
    }

    /// The sysinfo fallback agrees with /proc where both see the same thing.
    #[test]
    fn portable_agrees_with_procfs() {
        let procfs = HostCollector::new(HostSettings::default()).collect();
        let portable = HostCollector::portable(HostSettings::default()).collect();
        assert_eq!(
            value(&portable, "node_memory_MemTotal_bytes"),
            value(&procfs, "node_memory_MemTotal_bytes")
        );
        assert!(value(&procfs, "node_memory_MemTotal_bytes").unwrap() > 0.0);
        let root_size = |report: &HostReport| {
            report
                .families
                .iter()
                .find(|f| f.name == "node_filesystem_size_bytes")?
                .samples
                .iter()
                .find(|s| s.labels.iter().any(|(k, v)| k == "mountpoint" && v == "/"))
                .map(|s| s.value)
        };
        let size = root_size(&procfs);
        assert!(size.unwrap() > 0.0);
        assert_eq!(root_size(&portable), size);
        let boot = |report: &HostReport| value(report, "node_boot_time_seconds").unwrap();
        assert!((boot(&portable) - boot(&procfs)).abs() <= 2.0);
    }
}
