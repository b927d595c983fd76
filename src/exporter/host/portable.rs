//! The sysinfo fallback where `/proc` is not readable: the host metrics the OS exposes,
//! under node_exporter's Linux names (no CPU seconds, disk I/O or inode counts: sysinfo
//! does not provide them as counters).
//!
//! Unlike the `/proc` filesystem collector, sysinfo calls `statvfs` inline, so a hung
//! network mount can delay a collection here; exclude such mounts on these platforms.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use regex::Regex;
use sysinfo::{DiskRefreshKind, Disks, MemoryRefreshKind, Networks, System};

use super::filesystem::{self, Mount};
use super::{Error, HostReport, HostSettings, load, system};
use crate::exporter::family::{Family, labels};

/// sysinfo handles, created on first use and refreshed by every collection.
#[derive(Default)]
pub(crate) struct Portable {
    state: Mutex<State>,
}

impl fmt::Debug for Portable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Portable").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    system: Option<System>,
    disks: Option<Disks>,
    networks: Option<Networks>,
}

fn get_or_init<'a, T>(
    slot: &'a mut Option<T>,
    what: &'static str,
    init: impl FnOnce() -> Result<T, sysinfo::Error>,
) -> Result<&'a mut T, Error> {
    if slot.is_none() {
        *slot = Some(init().map_err(|error| Error::unavailable(what, &error))?);
    }
    slot.as_mut()
        .ok_or_else(|| Error::unavailable(what, &"not initialised"))
}

impl Portable {
    /// Runs every sub-collector sysinfo can serve, under the `/proc` collectors' names.
    pub(crate) fn collect(
        &self,
        settings: &HostSettings,
        netdev_exclude: &Regex,
        report: &mut HostReport,
    ) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        report.run("meminfo", || state.memory());
        report.run("filesystem", || state.filesystem(settings));
        report.run("netdev", || state.netdev(netdev_exclude));
        report.run("loadavg", || {
            let avg = System::load_average().map_err(|error| Error::unavailable("load", &error))?;
            Ok(load::families(avg.one, avg.five, avg.fifteen))
        });
        report.run("stat", || {
            let boot =
                System::boot_time().map_err(|error| Error::unavailable("boot time", &error))?;
            Ok(vec![
                Family::gauge("node_boot_time_seconds", "Node boot time, in unixtime.")
                    .with(Vec::new(), boot as f64),
            ])
        });
        report.run("time", system::time);
        report.run("uname", system::uname);
    }
}

impl State {
    fn memory(&mut self) -> Result<Vec<Family>, Error> {
        let system = get_or_init(&mut self.system, "memory", System::new)?;
        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        Ok(memory_families(&[
            ("MemTotal", system.total_memory()),
            ("MemFree", system.free_memory()),
            ("MemAvailable", system.available_memory()),
            ("SwapTotal", system.total_swap()),
            ("SwapFree", system.free_swap()),
        ]))
    }

    fn filesystem(&mut self, settings: &HostSettings) -> Result<Vec<Family>, Error> {
        let disks = get_or_init(&mut self.disks, "disks", Disks::new)?;
        disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        let entries = disks
            .iter()
            .map(|disk| DiskEntry {
                mount: Mount {
                    device: disk.name().to_string_lossy().into_owned(),
                    mount_point: disk.mount_point().to_string_lossy().into_owned(),
                    fs_type: disk.file_system().to_string_lossy().into_owned(),
                    read_only: disk.is_read_only(),
                },
                size: disk.total_space() as f64,
                avail: disk.available_space() as f64,
            })
            .collect();
        let entries = filesystem::select(
            entries,
            &settings.mount_points_exclude,
            &settings.fs_types_exclude,
        );
        Ok(filesystem_families(&entries))
    }

    fn netdev(&mut self, exclude: &Regex) -> Result<Vec<Family>, Error> {
        let networks = get_or_init(&mut self.networks, "networks", Networks::new)?;
        networks.refresh(true);
        let mut interfaces: Vec<Interface<'_>> = networks
            .iter()
            .map(|(name, data)| Interface {
                device: name.to_string_lossy(),
                receive_bytes: data.total_received(),
                receive_packets: data.total_packets_received(),
                receive_errs: data.total_errors_on_received(),
                transmit_bytes: data.total_transmitted(),
                transmit_packets: data.total_packets_transmitted(),
                transmit_errs: data.total_errors_on_transmitted(),
            })
            .filter(|interface| !exclude.is_match(&interface.device))
            .collect();
        interfaces.sort_unstable_by(|a, b| a.device.cmp(&b.device));
        Ok(network_families(&interfaces))
    }
}

/// `node_memory_<Field>_bytes` gauges from byte counts.
fn memory_families(fields: &[(&str, u64)]) -> Vec<Family> {
    fields
        .iter()
        .map(|(field, bytes)| {
            Family::gauge(
                format!("node_memory_{field}_bytes"),
                format!("Memory information field {field}_bytes."),
            )
            .with(Vec::new(), *bytes as f64)
        })
        .collect()
}

/// A mounted filesystem as sysinfo sees it.
#[derive(Debug, Clone, PartialEq)]
struct DiskEntry {
    mount: Mount,
    size: f64,
    avail: f64,
}

impl AsRef<Mount> for DiskEntry {
    fn as_ref(&self) -> &Mount {
        &self.mount
    }
}

fn filesystem_families(entries: &[DiskEntry]) -> Vec<Family> {
    let mut avail = Family::gauge(
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
    );
    let mut readonly = Family::gauge("node_filesystem_readonly", "Filesystem read-only status.");
    let mut size = Family::gauge("node_filesystem_size_bytes", "Filesystem size in bytes.");
    for entry in entries {
        let mount = &entry.mount;
        let labels = labels([
            ("device", &mount.device),
            ("fstype", &mount.fs_type),
            ("mountpoint", &mount.mount_point),
        ]);
        avail.push(labels.clone(), entry.avail);
        readonly.push(labels.clone(), if mount.read_only { 1.0 } else { 0.0 });
        size.push(labels, entry.size);
    }
    vec![avail, readonly, size]
}

/// One network interface's totals as sysinfo sees them (no drop counts).
#[derive(Debug, Clone, PartialEq)]
struct Interface<'a> {
    device: Cow<'a, str>,
    receive_bytes: u64,
    receive_packets: u64,
    receive_errs: u64,
    transmit_bytes: u64,
    transmit_packets: u64,
    transmit_errs: u64,
}

/// A metric suffix and how to read it from an interface.
type Column = (&'static str, fn(&Interface<'_>) -> u64);

fn network_families(interfaces: &[Interface<'_>]) -> Vec<Family> {
    let columns: [Column; 6] = [
        ("receive_bytes", |i| i.receive_bytes),
        ("receive_packets", |i| i.receive_packets),
        ("receive_errs", |i| i.receive_errs),
        ("transmit_bytes", |i| i.transmit_bytes),
        ("transmit_packets", |i| i.transmit_packets),
        ("transmit_errs", |i| i.transmit_errs),
    ];
    columns
        .iter()
        .map(|(stat, get)| {
            let mut family = Family::counter(
                format!("node_network_{stat}"),
                format!("Network device statistic {stat}."),
            );
            for interface in interfaces {
                family.push(
                    labels([("device", &interface.device)]),
                    get(interface) as f64,
                );
            }
            family
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_names_match_meminfo() {
        let families = memory_families(&[("MemTotal", 1024), ("SwapFree", 0)]);
        assert_eq!(families[0].name, "node_memory_MemTotal_bytes");
        assert_eq!(families[0].help, "Memory information field MemTotal_bytes.");
        assert_eq!(families[0].samples[0].value, 1024.0);
        assert_eq!(families[1].name, "node_memory_SwapFree_bytes");
    }

    #[test]
    fn filesystems_are_filtered_and_deduplicated() {
        let entry = |device: &str, mount_point: &str, fs_type: &str| DiskEntry {
            mount: Mount {
                device: device.into(),
                mount_point: mount_point.into(),
                fs_type: fs_type.into(),
                read_only: mount_point == "/boot",
            },
            size: 100.0,
            avail: 40.0,
        };
        let settings = HostSettings::default();
        let entries = filesystem::select(
            vec![
                entry("/dev/sda1", "/", "ext4"),
                entry("/dev/sda1", "/", "ext4"),
                entry("/dev/sda2", "/boot", "vfat"),
                entry("overlay", "/var/lib/docker/overlay2/x/merged", "overlay"),
                entry("/dev/sdb1", "/media/usb", "vfat"),
            ],
            &settings.mount_points_exclude,
            &settings.fs_types_exclude,
        );
        let families = filesystem_families(&entries);
        let size = families
            .iter()
            .find(|f| f.name == "node_filesystem_size_bytes")
            .unwrap();
        assert_eq!(size.samples.len(), 2);
        assert_eq!(size.samples[1].labels[2].1, "/boot");
        let readonly = families
            .iter()
            .find(|f| f.name == "node_filesystem_readonly")
            .unwrap();
        assert_eq!(readonly.samples[1].value, 1.0);
        assert!(
            families
                .iter()
                .all(|f| f.kind == crate::exporter::family::Kind::Gauge)
        );
    }

    #[test]
    fn network_counters() {
        let families = network_families(&[Interface {
            device: Cow::Borrowed("en0"),
            receive_bytes: 1,
            receive_packets: 2,
            receive_errs: 3,
            transmit_bytes: 4,
            transmit_packets: 5,
            transmit_errs: 6,
        }]);
        let got: Vec<(String, f64)> = families
            .iter()
            .map(|f| (f.sample_name().into_owned(), f.samples[0].value))
            .collect();
        assert_eq!(
            got,
            [
                ("node_network_receive_bytes_total".to_owned(), 1.0),
                ("node_network_receive_packets_total".to_owned(), 2.0),
                ("node_network_receive_errs_total".to_owned(), 3.0),
                ("node_network_transmit_bytes_total".to_owned(), 4.0),
                ("node_network_transmit_packets_total".to_owned(), 5.0),
                ("node_network_transmit_errs_total".to_owned(), 6.0),
            ]
        );
    }

    #[test]
    fn collects_something_on_this_machine() {
        let collector = super::super::HostCollector::portable(HostSettings::default());
        assert!(!collector.uses_procfs());
        let report = collector.collect();
        let names: Vec<&str> = report.collectors.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "meminfo",
                "filesystem",
                "netdev",
                "loadavg",
                "stat",
                "time",
                "uname"
            ]
        );
        assert!(
            report.collectors.iter().all(|c| c.success),
            "{:?}",
            report.collectors
        );
        assert!(
            report
                .families
                .iter()
                .any(|f| f.name == "node_memory_MemTotal_bytes")
        );
    }
}
