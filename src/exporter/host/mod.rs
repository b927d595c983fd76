//! Host metrics with node_exporter-compatible names, labels and semantics.
//!
//! On Linux each sub-collector is one of node_exporter 1.5's default collectors, named as
//! it names them (`host.collectors` enables a subset). It reads the host's files under
//! `host.procfs`, `host.sysfs` and `host.rootfs` (a container with the host's root
//! mounted read-only reports the host: mount points without the prefix, `statfs` through
//! it) into one buffer reused across collections, and turns them into families with a
//! pure parse function (node_exporter 1.5 as shipped in Debian bookworm is the reference
//! for names, help texts, types, units and default filters). Where `<procfs>/stat` is not
//! readable the [`portable`] sysinfo fallback provides the subset the OS exposes, under
//! the same names.
//!
//! **Invariant:** a collection never panics and never waits on a hung mount longer than
//! `mount_timeout`: `statfs` runs on helper threads and a mount that does not answer is
//! reported with `node_filesystem_device_error 1` until its pending call returns.

mod cpu;
mod disk;
pub mod filesystem;
mod kernel;
mod load;
mod memory;
mod netclass;
mod netstat;
mod network;
mod os;
mod portable;
mod read;
mod system;
mod textfile;
mod timex;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use regex::Regex;
use tracing::debug;

use super::family::{Family, labels};
pub use crate::config::host::{Collector, CollectorSet, HostPaths};
use crate::config::{DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE};
use read::Reader;

pub(crate) use cpu::boot_time;

/// Where Linux keeps the files the sub-collectors read.
pub const DEFAULT_PROC_ROOT: &str = "/proc";

/// node_exporter's default `--collector.filesystem.mount-timeout`.
pub const DEFAULT_MOUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the host collector needs from the configuration.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Mount points matching this are skipped (node_exporter's default).
    pub mount_points_exclude: Regex,
    /// Filesystem types matching this are skipped (node_exporter's default).
    pub fs_types_exclude: Regex,
    /// A `statfs` slower than this marks the mount stuck; it is skipped until it returns.
    pub mount_timeout: Duration,
    /// The sub-collectors that run.
    pub collectors: CollectorSet,
    /// `*.prom` files for the textfile collector; none when unset.
    pub textfile_directory: Option<PathBuf>,
    /// Where the host's root, `/proc` and `/sys` are.
    pub paths: HostPaths,
}

impl Default for HostSettings {
    /// node_exporter 1.5's defaults.
    fn default() -> Self {
        Self {
            mount_points_exclude: Regex::new(DEFAULT_MOUNT_POINTS_EXCLUDE)
                .expect("the default mount point exclude is a valid regex"),
            fs_types_exclude: Regex::new(DEFAULT_FS_TYPES_EXCLUDE)
                .expect("the default fs type exclude is a valid regex"),
            mount_timeout: DEFAULT_MOUNT_TIMEOUT,
            collectors: CollectorSet::default(),
            textfile_directory: None,
            paths: HostPaths::default(),
        }
    }
}

impl HostSettings {
    /// Whether two settings would collect the same way (regexes compared by pattern).
    pub fn same_as(&self, other: &HostSettings) -> bool {
        self.mount_points_exclude.as_str() == other.mount_points_exclude.as_str()
            && self.fs_types_exclude.as_str() == other.fs_types_exclude.as_str()
            && self.mount_timeout == other.mount_timeout
            && self.collectors == other.collectors
            && self.textfile_directory == other.textfile_directory
            && self.paths == other.paths
    }
}

/// How one sub-collector (cpu, meminfo, …) fared in one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorStat {
    pub name: &'static str,
    pub success: bool,
    pub duration: Duration,
}

/// The result of one collection.
#[derive(Debug, Clone, Default)]
pub struct HostReport {
    pub families: Vec<Family>,
    pub collectors: Vec<CollectorStat>,
}

impl HostReport {
    /// Runs one sub-collector, timing it; a failure is logged and contributes no families.
    fn run(&mut self, name: &'static str, collect: impl FnOnce() -> Result<Vec<Family>, Error>) {
        let start = Instant::now();
        let result = collect();
        let duration = start.elapsed();
        let success = match result {
            Ok(families) => {
                self.families.extend(families);
                true
            }
            Err(error) => {
                debug!(%error, collector = name, "host collector failed");
                false
            }
        };
        self.collectors.push(CollectorStat {
            name,
            success,
            duration,
        });
    }

    /// node_exporter's `node_scrape_collector_{duration_seconds,success}{collector}`.
    fn push_scrape_families(&mut self) {
        let mut duration = Family::gauge(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
        );
        let mut success = Family::gauge(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
        );
        for stat in &self.collectors {
            duration.push(
                labels([("collector", stat.name)]),
                stat.duration.as_secs_f64(),
            );
            success.push(
                labels([("collector", stat.name)]),
                f64::from(u8::from(stat.success)),
            );
        }
        self.families.push(duration);
        self.families.push(success);
    }
}

/// Why a sub-collector produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{file}: {detail}")]
    Parse { file: &'static str, detail: String },
    #[error("{what} unavailable: {detail}")]
    Unavailable { what: &'static str, detail: String },
}

impl Error {
    fn parse(file: &'static str, detail: impl Into<String>) -> Self {
        Self::Parse {
            file,
            detail: detail.into(),
        }
    }

    fn unavailable(what: &'static str, detail: &dyn std::fmt::Display) -> Self {
        Self::Unavailable {
            what,
            detail: detail.to_string(),
        }
    }
}

/// `USER_HZ`: the unit of the tick counts in `/proc/stat` and `/proc/<pid>/stat`.
pub(crate) fn user_hz() -> f64 {
    #[cfg(unix)]
    let hz = rustix::param::clock_ticks_per_second();
    #[cfg(not(unix))]
    let hz = 100_u64;
    if hz == 0 { 100.0 } else { hz as f64 }
}

/// The filters compiled once (node_exporter's defaults for these collectors).
#[derive(Debug)]
struct Filters {
    netdev_exclude: Regex,
    disk_exclude: Regex,
    netstat_fields: Regex,
    vmstat_fields: Regex,
}

impl Filters {
    fn new() -> Self {
        let compile = |pattern: &str| {
            Regex::new(pattern).expect("node_exporter's default filters are valid regexes")
        };
        Self {
            netdev_exclude: compile(network::DEFAULT_DEVICE_EXCLUDE),
            disk_exclude: compile(disk::DEFAULT_DEVICE_EXCLUDE),
            netstat_fields: compile(netstat::DEFAULT_FIELDS),
            vmstat_fields: compile(netstat::DEFAULT_VMSTAT_FIELDS),
        }
    }
}

#[derive(Debug)]
enum Source {
    Procfs,
    Portable(Box<portable::Portable>),
}

/// Collects host metrics; blocking, so call it from a blocking thread.
#[derive(Debug)]
pub struct HostCollector {
    settings: HostSettings,
    source: Source,
    filters: Filters,
    statter: filesystem::Statter,
    user_hz: f64,
    /// Collections are serialised by the exporter; the lock only makes that explicit.
    reader: Mutex<Reader>,
}

impl HostCollector {
    /// Reads the host's files when `<procfs>/stat` is readable, sysinfo otherwise.
    pub fn new(settings: HostSettings) -> Self {
        let source = if std::fs::File::open(settings.paths.procfs.join("stat")).is_ok() {
            Source::Procfs
        } else {
            Source::Portable(Box::default())
        };
        Self::with_source(settings, source)
    }

    /// Like [`HostCollector::new`] with another proc root (a fixture directory in tests).
    pub fn with_proc_root(mut settings: HostSettings, proc_root: impl AsRef<Path>) -> Self {
        settings.paths.procfs = proc_root.as_ref().to_owned();
        Self::new(settings)
    }

    /// Always uses the sysinfo fallback, even where `/proc` exists.
    pub fn portable(settings: HostSettings) -> Self {
        Self::with_source(settings, Source::Portable(Box::default()))
    }

    fn with_source(settings: HostSettings, source: Source) -> Self {
        let statter = filesystem::Statter::new(settings.mount_timeout, &settings.paths.rootfs);
        Self {
            settings,
            source,
            filters: Filters::new(),
            statter,
            user_hz: user_hz(),
            reader: Mutex::new(Reader::new()),
        }
    }

    pub fn settings(&self) -> &HostSettings {
        &self.settings
    }

    /// Whether the exact `/proc` sub-collectors are in use (not the sysinfo fallback).
    pub fn uses_procfs(&self) -> bool {
        matches!(self.source, Source::Procfs)
    }

    /// Runs every enabled sub-collector once. Never panics; a failing sub-collector is
    /// reported in `collectors` with `success: false` and contributes no families.
    pub fn collect(&self) -> HostReport {
        let mut report = HostReport {
            families: Vec::with_capacity(320),
            collectors: Vec::with_capacity(Collector::ALL.len()),
        };
        match &self.source {
            Source::Procfs => {
                let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
                self.collect_procfs(&mut reader, &mut report);
            }
            Source::Portable(portable) => {
                portable.collect(&self.settings, &self.filters.netdev_exclude, &mut report)
            }
        }
        report.push_scrape_families();
        report
    }

    fn collect_procfs(&self, reader: &mut Reader, report: &mut HostReport) {
        let paths = &self.settings.paths;
        let filters = &self.filters;
        // `cpu` and `stat` share one read of /proc/stat.
        let mut stat: Option<String> = None;
        for collector in Collector::ALL {
            if !self.settings.collectors.contains(collector) {
                continue;
            }
            let name = collector.name();
            match collector {
                Collector::Cpu => report.run(name, || {
                    let text = reader.read(&paths.procfs.join("stat"))?;
                    let families = cpu::parse_cpu(text, self.user_hz);
                    stat = Some(text.to_owned());
                    families
                }),
                Collector::Stat => report.run(name, || match &stat {
                    Some(text) => cpu::parse_stat(text),
                    None => cpu::parse_stat(reader.read(&paths.procfs.join("stat"))?),
                }),
                Collector::Meminfo => report.run(name, || {
                    memory::parse(reader.read(&paths.procfs.join("meminfo"))?)
                }),
                Collector::Filesystem => report.run(name, || self.filesystem(reader)),
                Collector::Netdev => report.run(name, || {
                    network::collect(paths, reader, &filters.netdev_exclude)
                }),
                Collector::Diskstats => report.run(name, || {
                    let text = reader.read(&paths.procfs.join("diskstats"))?.to_owned();
                    let (mut families, disks) = disk::parse(&text, &filters.disk_exclude)?;
                    let udev = paths.rootfs.join("run/udev/data");
                    families.push(disk::info(&disks, &udev, reader));
                    Ok(families)
                }),
                Collector::Loadavg => report.run(name, || {
                    load::parse(reader.read(&paths.procfs.join("loadavg"))?)
                }),
                Collector::Time => report.run(name, || system::time_collector(paths, reader)),
                Collector::Uname => report.run(name, system::uname),
                Collector::Arp => report.run(name, || kernel::arp(paths, reader)),
                Collector::Conntrack => report.run(name, || kernel::conntrack(paths, reader)),
                Collector::Entropy => report.run(name, || kernel::entropy(paths, reader)),
                Collector::Filefd => report.run(name, || kernel::filefd(paths, reader)),
                Collector::Netclass => report.run(name, || netclass::collect(paths, reader)),
                Collector::Netstat => report.run(name, || {
                    netstat::collect(paths, reader, &filters.netstat_fields)
                }),
                Collector::Os => report.run(name, || os::collect(paths, reader)),
                Collector::Pressure => report.run(name, || kernel::pressure(paths, reader)),
                Collector::Selinux => report.run(name, || kernel::selinux(paths, reader)),
                Collector::Sockstat => report.run(name, || netstat::sockstat(paths, reader)),
                Collector::Softnet => report.run(name, || kernel::softnet(paths, reader)),
                Collector::Textfile => report.run(name, || {
                    Ok(textfile::collect(
                        self.settings.textfile_directory.as_deref(),
                        reader,
                    ))
                }),
                Collector::Timex => report.run(name, timex::collect),
                Collector::UdpQueues => report.run(name, || kernel::udp_queues(paths, reader)),
                Collector::Vmstat => report.run(name, || {
                    netstat::vmstat(paths, reader, &filters.vmstat_fields)
                }),
            }
        }
    }

    /// node_exporter reads init's mounts, and the caller's where `<procfs>/1` is hidden;
    /// mount points are reported without the `rootfs` prefix and statted through it.
    fn filesystem(&self, reader: &mut Reader) -> Result<Vec<Family>, Error> {
        let procfs = &self.settings.paths.procfs;
        let text = match reader.read(&procfs.join("1/mounts")) {
            Ok(text) => text,
            Err(_) => reader.read(&procfs.join("mounts"))?,
        };
        let mut mounts = filesystem::parse_mounts(text);
        let root = self.settings.paths.rootfs.to_string_lossy();
        for mount in &mut mounts {
            if let Some(stripped) = filesystem::strip_root(&root, &mount.mount_point) {
                mount.mount_point = stripped;
            }
        }
        let mounts = filesystem::select(
            mounts,
            &self.settings.mount_points_exclude,
            &self.settings.fs_types_exclude,
        );
        Ok(self.statter.collect(mounts))
    }
}

#[cfg(test)]
mod tests;
