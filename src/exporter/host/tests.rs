//! Tests of the whole host collector: a fixture root holding every file the collectors
//! read, failing sub-collectors, `host.rootfs` (mount points unprefixed, statfs through
//! the prefix), this machine's /proc, the exposition text, and /proc against the sysinfo
//! fallback.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use prometheus_client::registry::Registry;

use super::*;
use crate::exporter::family::Families;

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A root (`proc/`, `sys/`, `etc/`) holding small but realistic copies of every file read.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "proc/stat",
        "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 10 0 10 100 0 0 0 0 0 0\n\
         intr 5 1 2\nctxt 7\nbtime 1700000000\nprocesses 9\nprocs_running 2\nprocs_blocked 1\n",
    );
    write(
        root,
        "proc/meminfo",
        "MemTotal:       1000 kB\nMemFree:         500 kB\nHugePages_Total:       0\n",
    );
    // No 1/mounts: the collector falls back to `mounts`, as with hidepid.
    write(
        root,
        "proc/mounts",
        "/dev/vda / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n",
    );
    write(
        root,
        "proc/net/dev",
        "h1\nh2\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n  eth0: 9 8 7 6 0 0 0 0 5 4 3 2 0 0 0 0\n",
    );
    write(
        root,
        "proc/diskstats",
        " 254 0 vda 1 0 8 3 2 0 16 4 0 5 7 0 0 0 0\n 254 1 vda1 1 0 8 3 2 0 16 4 0 5 7\n",
    );
    write(root, "proc/loadavg", "0.50 0.25 0.10 1/100 42\n");
    write(
        root,
        "proc/net/arp",
        "IP address HW type Flags HW address Mask Device\n10.0.0.1 0x1 0x2 02:fc:00:00:00:02 * eth0\n",
    );
    write(root, "proc/sys/net/netfilter/nf_conntrack_count", "3\n");
    write(root, "proc/sys/net/netfilter/nf_conntrack_max", "262144\n");
    write(root, "proc/sys/kernel/random/entropy_avail", "256\n");
    write(root, "proc/sys/kernel/random/poolsize", "256\n");
    write(root, "proc/sys/fs/file-nr", "1197\t0\t2466116\n");
    write(
        root,
        "proc/net/netstat",
        "TcpExt: ListenDrops PruneCalled\nTcpExt: 4 5\n",
    );
    write(
        root,
        "proc/net/snmp",
        "Tcp: ActiveOpens MaxConn\nTcp: 3998 -1\n",
    );
    for resource in ["cpu", "io", "memory"] {
        write(
            root,
            &format!("proc/pressure/{resource}"),
            "some avg10=0 avg60=0 avg300=0 total=2000000\nfull avg10=0 avg60=0 avg300=0 total=1000000\n",
        );
    }
    write(
        root,
        "proc/net/sockstat",
        "sockets: used 34\nTCP: inuse 15 orphan 0 tw 5 alloc 18 mem 1\n",
    );
    write(
        root,
        "proc/net/softnet_stat",
        "0000000a 00000000 00000001\n",
    );
    write(
        root,
        "proc/net/udp",
        "sl local rem st tx_queue:rx_queue\n 1: 0:0 0:0 07 00000010:00000020 0\n",
    );
    write(root, "proc/vmstat", "pgfault 77\nnr_free_pages 1\n");
    write(root, "etc/os-release", "ID=fixture\nVERSION_ID=\"1.5\"\n");
    write(root, "sys/class/net/eth0/operstate", "up\n");
    write(root, "sys/class/net/eth0/mtu", "1400\n");
    write(
        root,
        "sys/devices/system/clocksource/clocksource0/current_clocksource",
        "tsc\n",
    );
    dir
}

/// Settings reading everything under `root`.
fn under(root: &Path) -> HostSettings {
    HostSettings {
        paths: HostPaths::under(root),
        ..HostSettings::default()
    }
}

fn all_names() -> Vec<&'static str> {
    Collector::ALL.iter().map(|c| c.name()).collect()
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
    let collector = HostCollector::new(under(dir.path()));
    assert!(collector.uses_procfs());
    let report = collector.collect();
    assert_eq!(names(&report), all_names());
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
    for (name, want) in [
        ("node_arp_entries", 1.0),
        ("node_nf_conntrack_entries", 3.0),
        ("node_nf_conntrack_entries_limit", 262_144.0),
        ("node_entropy_pool_size_bits", 256.0),
        ("node_filefd_maximum", 2_466_116.0),
        ("node_netstat_TcpExt_ListenDrops", 4.0),
        ("node_netstat_Tcp_ActiveOpens", 3998.0),
        ("node_pressure_io_stalled_seconds", 1.0),
        ("node_pressure_cpu_waiting_seconds", 2.0),
        ("node_sockstat_TCP_alloc", 18.0),
        ("node_softnet_processed", 10.0),
        ("node_udp_queues", 32.0),
        ("node_vmstat_pgfault", 77.0),
        ("node_os_version", 1.5),
        ("node_network_up", 1.0),
        ("node_network_mtu_bytes", 1400.0),
        ("node_network_receive_nohandler", 0.0),
        ("node_selinux_enabled", 0.0),
        ("node_textfile_scrape_error", 0.0),
        ("node_time_clocksource_current_info", 1.0),
        ("node_cpu_guest_seconds", 0.0),
    ] {
        let got = value(&report, name);
        // nohandler has no sysfs statistics file in the fixture: no sample.
        if name == "node_network_receive_nohandler" {
            assert_eq!(got, None, "{name}");
        } else {
            assert_eq!(got, Some(want), "{name}");
        }
    }
    assert!(
        report
            .families
            .iter()
            .all(|f| f.name != "node_pressure_cpu_stalled_seconds")
    );
    let success = report
        .families
        .iter()
        .find(|f| f.name == "node_scrape_collector_success")
        .unwrap();
    assert_eq!(success.samples.len(), Collector::ALL.len());
    assert!(success.samples.iter().all(|s| s.value == 1.0));
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
    fs::remove_file(dir.path().join("proc/meminfo")).unwrap();
    fs::write(dir.path().join("proc/loadavg"), "garbage\n").unwrap();
    let report = HostCollector::new(under(dir.path())).collect();
    assert_eq!(names(&report), all_names());
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
    let success = report
        .families
        .iter()
        .find(|f| f.name == "node_scrape_collector_success")
        .unwrap();
    let zero: Vec<&str> = success
        .samples
        .iter()
        .filter(|s| s.value == 0.0)
        .map(|s| s.labels[0].1.as_str())
        .collect();
    assert_eq!(zero, ["meminfo", "loadavg"]);
}

#[test]
fn collectors_can_be_chosen() {
    let dir = fixture();
    let settings = HostSettings {
        collectors: [Collector::Loadavg, Collector::Vmstat]
            .into_iter()
            .collect(),
        ..under(dir.path())
    };
    let report = HostCollector::new(settings).collect();
    assert_eq!(names(&report), ["loadavg", "vmstat"]);
    assert!(
        report
            .families
            .iter()
            .all(|f| !f.name.starts_with("node_cpu"))
    );
    assert_eq!(value(&report, "node_load5"), Some(0.25));
}

/// `host.rootfs`: the host's mount table lists mount points as the host sees them (or,
/// read from inside the container, with the prefix); both are reported without the
/// prefix and statted through it.
#[test]
fn rootfs_mounts_are_reported_unprefixed_and_statted_through_the_prefix() {
    let dir = fixture();
    let root = dir.path();
    fs::create_dir_all(root.join("srv/data")).unwrap();
    fs::create_dir_all(root.join("backup")).unwrap();
    write(
        root,
        "proc/1/mounts",
        &format!(
            "/dev/vda / ext4 rw 0 0\n/dev/vdb /srv/data ext4 ro 0 0\n/dev/vdc {}/backup xfs rw 0 0\nproc /proc proc rw 0 0\n",
            root.display()
        ),
    );
    let report = HostCollector::new(under(root)).collect();
    let family = |name: &str| {
        report
            .families
            .iter()
            .find(|f| f.name == name)
            .unwrap()
            .samples
            .iter()
            .map(|s| {
                let labels: Vec<&str> = s.labels.iter().map(|(_, v)| v.as_str()).collect();
                (labels.join(" "), s.value)
            })
            .collect::<Vec<_>>()
    };
    let errors = family("node_filesystem_device_error");
    assert_eq!(
        errors,
        [
            ("/dev/vda ext4 /".to_owned(), 0.0),
            ("/dev/vdb ext4 /srv/data".to_owned(), 0.0),
            ("/dev/vdc xfs /backup".to_owned(), 0.0),
        ]
    );
    // Every mount point is a directory of the fixture's own file system.
    let stat = rustix::fs::statfs(root).unwrap();
    let size = stat.f_blocks as f64 * stat.f_bsize as f64;
    let files = stat.f_files as f64;
    for (_, value) in family("node_filesystem_size_bytes") {
        assert_eq!(value, size);
    }
    for (_, value) in family("node_filesystem_files") {
        assert_eq!(value, files);
    }
    let readonly = family("node_filesystem_readonly");
    assert_eq!(readonly[1], ("/dev/vdb ext4 /srv/data".to_owned(), 1.0));
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
        assert_eq!(names(&report), all_names());
        // The core collectors work on every Linux; the others depend on the kernel's
        // configuration (conntrack, pressure) and are checked against node_exporter in
        // tests/it/host_node_exporter.rs.
        assert!(
            report.collectors.iter().take(9).all(|c| c.success),
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
