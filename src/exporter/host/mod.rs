//! Host metrics with node_exporter-compatible names, labels and semantics.
//!
//! On Linux each sub-collector reads one `/proc` file with a single `read_to_string` and
//! turns it into families with a pure parse function (node_exporter 1.5 as shipped in
//! Debian bookworm is the reference for names, help texts, units and default excludes).
//! Where `/proc/stat` is not readable the [`portable`] sysinfo fallback provides the subset
//! the OS exposes, under the same names.
//!
//! **Invariant:** a collection never panics and never waits on a hung mount longer than
//! `mount_timeout`: `statfs` runs on helper threads and a mount that does not answer is
//! reported with `node_filesystem_device_error 1` until its pending call returns.

mod cpu;
mod disk;
pub mod filesystem;
mod load;
mod memory;
mod network;
mod portable;
mod system;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regex::Regex;
use tracing::debug;

use super::family::Family;
use crate::config::{DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE};

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
        }
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

/// Reads a whole (small, virtual) file in one call.
fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// Like [`read`], for files whose paths may hold bytes that are not UTF-8 (mount tables).
fn read_lossy(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()))
}

/// `USER_HZ`: the unit of the tick counts in `/proc/stat` and `/proc/<pid>/stat`.
pub(crate) fn user_hz() -> f64 {
    #[cfg(unix)]
    let hz = rustix::param::clock_ticks_per_second();
    #[cfg(not(unix))]
    let hz = 100_u64;
    if hz == 0 { 100.0 } else { hz as f64 }
}

/// The `/proc` files read by the Linux sub-collectors, resolved once.
#[derive(Debug)]
struct ProcPaths {
    stat: PathBuf,
    meminfo: PathBuf,
    init_mounts: PathBuf,
    mounts: PathBuf,
    net_dev: PathBuf,
    diskstats: PathBuf,
    loadavg: PathBuf,
}

impl ProcPaths {
    fn new(root: &Path) -> Self {
        Self {
            stat: root.join("stat"),
            meminfo: root.join("meminfo"),
            init_mounts: root.join("1/mounts"),
            mounts: root.join("mounts"),
            net_dev: root.join("net/dev"),
            diskstats: root.join("diskstats"),
            loadavg: root.join("loadavg"),
        }
    }
}

#[derive(Debug)]
enum Source {
    Procfs(ProcPaths),
    Portable(Box<portable::Portable>),
}

/// Collects host metrics; blocking, so call it from a blocking thread.
#[derive(Debug)]
pub struct HostCollector {
    settings: HostSettings,
    source: Source,
    netdev_exclude: Regex,
    disk_exclude: Regex,
    statter: filesystem::Statter,
    user_hz: f64,
}

impl HostCollector {
    /// Reads `/proc` when `/proc/stat` is readable, sysinfo otherwise.
    pub fn new(settings: HostSettings) -> Self {
        Self::with_proc_root(settings, DEFAULT_PROC_ROOT)
    }

    /// Like [`HostCollector::new`] with another proc root (a fixture directory in tests, or
    /// a host's `/proc` mounted into a container).
    pub fn with_proc_root(settings: HostSettings, proc_root: impl AsRef<Path>) -> Self {
        let root = proc_root.as_ref();
        let source = if std::fs::File::open(root.join("stat")).is_ok() {
            Source::Procfs(ProcPaths::new(root))
        } else {
            Source::Portable(Box::default())
        };
        Self::with_source(settings, source)
    }

    /// Always uses the sysinfo fallback, even where `/proc` exists.
    pub fn portable(settings: HostSettings) -> Self {
        Self::with_source(settings, Source::Portable(Box::default()))
    }

    fn with_source(settings: HostSettings, source: Source) -> Self {
        let statter = filesystem::Statter::new(settings.mount_timeout);
        Self {
            settings,
            source,
            netdev_exclude: Regex::new(network::DEFAULT_DEVICE_EXCLUDE)
                .expect("the default netdev exclude is a valid regex"),
            disk_exclude: Regex::new(disk::DEFAULT_DEVICE_EXCLUDE)
                .expect("the default diskstats exclude is a valid regex"),
            statter,
            user_hz: user_hz(),
        }
    }

    pub fn settings(&self) -> &HostSettings {
        &self.settings
    }

    /// Whether the exact `/proc` sub-collectors are in use (not the sysinfo fallback).
    pub fn uses_procfs(&self) -> bool {
        matches!(self.source, Source::Procfs(_))
    }

    /// Reads every sub-collector once. Never panics; a failing sub-collector is
    /// reported in `collectors` with `success: false` and contributes no families.
    pub fn collect(&self) -> HostReport {
        let mut report = HostReport {
            families: Vec::with_capacity(128),
            collectors: Vec::with_capacity(9),
        };
        match &self.source {
            Source::Procfs(paths) => self.collect_procfs(paths, &mut report),
            Source::Portable(portable) => {
                portable.collect(&self.settings, &self.netdev_exclude, &mut report)
            }
        }
        report
    }

    fn collect_procfs(&self, paths: &ProcPaths, report: &mut HostReport) {
        // `cpu` and `stat` share one read of /proc/stat.
        let mut stat = None;
        report.run("cpu", || {
            let text = read(&paths.stat)?;
            let families = cpu::parse_cpu(&text, self.user_hz);
            stat = Some(text);
            families
        });
        report.run("meminfo", || memory::parse(&read(&paths.meminfo)?));
        report.run("filesystem", || {
            // node_exporter reads init's mounts, and the caller's where /proc/1 is hidden.
            let text = read_lossy(&paths.init_mounts).or_else(|_| read_lossy(&paths.mounts))?;
            let mounts = filesystem::select(
                filesystem::parse_mounts(&text),
                &self.settings.mount_points_exclude,
                &self.settings.fs_types_exclude,
            );
            Ok(self.statter.collect(mounts))
        });
        report.run("netdev", || {
            network::parse(&read(&paths.net_dev)?, &self.netdev_exclude)
        });
        report.run("diskstats", || {
            disk::parse(&read(&paths.diskstats)?, &self.disk_exclude)
        });
        report.run("loadavg", || load::parse(&read(&paths.loadavg)?));
        report.run("stat", || match &stat {
            Some(text) => cpu::parse_stat(text),
            None => cpu::parse_stat(&read(&paths.stat)?),
        });
        report.run("time", system::time);
        report.run("uname", system::uname);
    }
}

#[cfg(test)]
mod tests;
