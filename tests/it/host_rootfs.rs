//! `host.rootfs` through the real server: a fixture root (proc/meminfo, proc/stat,
//! proc/loadavg, proc/mounts and a mounted directory) gives exactly its values, with mount
//! points reported as the host sees them (the prefix stripped) and statted through it.

use std::fs;
use std::path::Path;

use crate::support::Lookout;
use crate::support::exposition::labels;

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().expect("fixture paths have a parent")).expect("mkdir");
    fs::write(path, content).expect("write fixture");
}

#[test]
fn a_fixture_root_is_reported_exactly_with_unprefixed_mount_points() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let prefix = root.display().to_string();
    write(
        root,
        "proc/meminfo",
        "MemTotal:       2048 kB\nMemFree:        1024 kB\nMemAvailable:   1536 kB\n",
    );
    write(
        root,
        "proc/stat",
        "cpu  200 0 100 1000 0 0 0 0 0 0\ncpu0 200 0 100 1000 0 0 0 0 0 0\n\
         intr 42 0\nctxt 4242\nbtime 1700000000\nprocesses 77\nprocs_running 3\nprocs_blocked 0\n",
    );
    write(root, "proc/loadavg", "1.25 0.75 0.50 2/120 4242\n");
    fs::create_dir_all(root.join("srv/data")).unwrap();
    // The host's view (`/srv/data`) and the container's view (`<root>/` and `<root>/srv/data`
    // as they appear in a container's own mount table) must both come out unprefixed.
    write(
        root,
        "proc/mounts",
        &format!(
            "/dev/vda {prefix} ext4 rw,relatime 0 0\n/dev/vdb {prefix}/srv/data ext4 ro 0 0\n\
             proc /proc proc rw 0 0\n"
        ),
    );
    let config = format!(
        "host:\n  rootfs: {prefix}\n  max_age: 0s\n  collectors: {{ include: [meminfo, stat, cpu, loadavg, filesystem] }}\n"
    );
    let lookout = Lookout::start(&config);
    let metrics = lookout.metrics();

    assert_eq!(
        metrics.scalar("node_memory_MemTotal_bytes"),
        Some(2048.0 * 1024.0)
    );
    assert_eq!(
        metrics.scalar("node_memory_MemAvailable_bytes"),
        Some(1536.0 * 1024.0)
    );
    assert_eq!(metrics.scalar("node_load1"), Some(1.25));
    assert_eq!(metrics.scalar("node_load15"), Some(0.5));
    assert_eq!(metrics.scalar("node_boot_time_seconds"), Some(1.7e9));
    assert_eq!(metrics.scalar("node_context_switches_total"), Some(4242.0));
    assert_eq!(metrics.scalar("node_procs_running"), Some(3.0));
    let hz = rustix::param::clock_ticks_per_second() as f64;
    assert_eq!(
        metrics.value(
            "node_cpu_seconds_total",
            &labels(&[("cpu", "0"), ("mode", "idle")])
        ),
        Some(1000.0 / hz)
    );
    // Only the listed collectors ran.
    assert!(metrics.get("node_network_receive_bytes_total").is_empty());
    assert!(metrics.get("node_vmstat_pgfault").is_empty());

    let stat = rustix::fs::statfs(root).unwrap();
    let size = stat.f_blocks as f64 * stat.f_bsize as f64;
    let mounts: Vec<(String, f64)> = metrics
        .get("node_filesystem_size_bytes")
        .iter()
        .map(|(labels, value)| (labels["mountpoint"].clone(), *value))
        .collect();
    assert_eq!(
        mounts,
        [("/".to_owned(), size), ("/srv/data".to_owned(), size)],
        "{}",
        lookout.logs()
    );
    let error = |mountpoint: &str, device: &str| {
        metrics.value(
            "node_filesystem_device_error",
            &labels(&[
                ("device", device),
                ("fstype", "ext4"),
                ("mountpoint", mountpoint),
            ]),
        )
    };
    assert_eq!(error("/", "/dev/vda"), Some(0.0));
    assert_eq!(error("/srv/data", "/dev/vdb"), Some(0.0));
    assert_eq!(
        metrics.value(
            "node_filesystem_readonly",
            &labels(&[
                ("device", "/dev/vdb"),
                ("fstype", "ext4"),
                ("mountpoint", "/srv/data")
            ]),
        ),
        Some(1.0)
    );
    assert_eq!(
        metrics.value(
            "node_filesystem_files",
            &labels(&[
                ("device", "/dev/vdb"),
                ("fstype", "ext4"),
                ("mountpoint", "/srv/data")
            ]),
        ),
        Some(stat.f_files as f64)
    );
    for (name, samples) in &metrics.samples {
        for (labels, _) in samples {
            assert!(
                labels.values().all(|v| !v.contains(&prefix)),
                "{name}{labels:?} shows the rootfs prefix"
            );
        }
    }
}
