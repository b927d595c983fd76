//! The host keys added for node_exporter parity: `host.collectors` (include or exclude
//! by collector name), `host.textfile_directory`, and `host.rootfs` with the `procfs` and
//! `sysfs` it derives (node_exporter's `--path.rootfs`, `--path.procfs`, `--path.sysfs`).
//!
//! Raw structs close to the file and pure checks that return `(key path, message)` pairs;
//! `validate` turns those into positioned diagnostics. No I/O: a path is only checked
//! for being absolute.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `host.collectors`: at most one of the two lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollectors {
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
}

/// One of the host sub-collectors, named as node_exporter names its collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collector {
    Arp,
    Conntrack,
    Cpu,
    Diskstats,
    Entropy,
    Filefd,
    Filesystem,
    Loadavg,
    Meminfo,
    Netclass,
    Netdev,
    Netstat,
    Os,
    Pressure,
    Selinux,
    Sockstat,
    Softnet,
    Stat,
    Textfile,
    Time,
    Timex,
    UdpQueues,
    Uname,
    Vmstat,
}

impl Collector {
    /// Every collector, in the order a collection runs them.
    pub const ALL: [Collector; 24] = [
        Collector::Cpu,
        Collector::Meminfo,
        Collector::Filesystem,
        Collector::Netdev,
        Collector::Diskstats,
        Collector::Loadavg,
        Collector::Stat,
        Collector::Time,
        Collector::Uname,
        Collector::Arp,
        Collector::Conntrack,
        Collector::Entropy,
        Collector::Filefd,
        Collector::Netclass,
        Collector::Netstat,
        Collector::Os,
        Collector::Pressure,
        Collector::Selinux,
        Collector::Sockstat,
        Collector::Softnet,
        Collector::Textfile,
        Collector::Timex,
        Collector::UdpQueues,
        Collector::Vmstat,
    ];

    /// node_exporter's name (the `collector` label of `node_scrape_collector_success`).
    pub fn name(self) -> &'static str {
        match self {
            Collector::Arp => "arp",
            Collector::Conntrack => "conntrack",
            Collector::Cpu => "cpu",
            Collector::Diskstats => "diskstats",
            Collector::Entropy => "entropy",
            Collector::Filefd => "filefd",
            Collector::Filesystem => "filesystem",
            Collector::Loadavg => "loadavg",
            Collector::Meminfo => "meminfo",
            Collector::Netclass => "netclass",
            Collector::Netdev => "netdev",
            Collector::Netstat => "netstat",
            Collector::Os => "os",
            Collector::Pressure => "pressure",
            Collector::Selinux => "selinux",
            Collector::Sockstat => "sockstat",
            Collector::Softnet => "softnet",
            Collector::Stat => "stat",
            Collector::Textfile => "textfile",
            Collector::Time => "time",
            Collector::Timex => "timex",
            Collector::UdpQueues => "udp_queues",
            Collector::Uname => "uname",
            Collector::Vmstat => "vmstat",
        }
    }

    fn from_name(name: &str) -> Option<Collector> {
        Collector::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The enabled collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorSet(u32);

impl Default for CollectorSet {
    /// Every collector, as node_exporter's defaults on Linux.
    fn default() -> Self {
        Self::from_iter(Collector::ALL)
    }
}

impl FromIterator<Collector> for CollectorSet {
    fn from_iter<I: IntoIterator<Item = Collector>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, c| bits | c.bit()))
    }
}

impl CollectorSet {
    pub fn contains(self, collector: Collector) -> bool {
        self.0 & collector.bit() != 0
    }
}

/// Where the host's files are: `rootfs` (mount points are reported relative to it and
/// statted through it), `procfs` and `sysfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    pub rootfs: PathBuf,
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self::under(Path::new("/"))
    }
}

impl HostPaths {
    /// `root`, `root/proc` and `root/sys`.
    pub fn under(root: &Path) -> Self {
        Self {
            rootfs: root.to_owned(),
            procfs: root.join("proc"),
            sysfs: root.join("sys"),
        }
    }
}

/// A key path and what is wrong with its value.
pub type Problem = (String, String);

/// `host.collectors` → the enabled set; unknown names and both lists at once are errors.
pub fn collectors(raw: Option<&RawCollectors>) -> (CollectorSet, Vec<Problem>) {
    let mut problems = Vec::new();
    let Some(raw) = raw else {
        return (CollectorSet::default(), problems);
    };
    let mut named = |key: &str, names: &[String]| -> Vec<Collector> {
        names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let found = Collector::from_name(name);
                if found.is_none() {
                    let known: Vec<&str> = Collector::ALL.iter().map(|c| c.name()).collect();
                    problems.push((
                        format!("host.collectors.{key}[{i}]"),
                        format!(
                            "unknown collector `{name}` (expected one of: {})",
                            known.join(", ")
                        ),
                    ));
                }
                found
            })
            .collect()
    };
    let set = match (&raw.include, &raw.exclude) {
        (Some(_), Some(_)) => {
            problems.push((
                "host.collectors".to_owned(),
                "set either `include` or `exclude`, not both".to_owned(),
            ));
            CollectorSet::default()
        }
        (Some(include), None) => named("include", include).into_iter().collect(),
        (None, Some(exclude)) => {
            let excluded = named("exclude", exclude);
            Collector::ALL
                .into_iter()
                .filter(|c| !excluded.contains(c))
                .collect()
        }
        (None, None) => CollectorSet::default(),
    };
    (set, problems)
}

/// `host.rootfs`, `host.procfs`, `host.sysfs`: absolute paths; `procfs` and `sysfs`
/// default to `proc` and `sys` under `rootfs`.
pub fn paths(
    rootfs: Option<&str>,
    procfs: Option<&str>,
    sysfs: Option<&str>,
) -> (HostPaths, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut absolute = |key: &str, value: Option<&str>| -> Option<PathBuf> {
        let value = value?;
        let path = PathBuf::from(value);
        if path.is_absolute() {
            Some(path)
        } else {
            problems.push((
                format!("host.{key}"),
                format!("`{value}` is not an absolute path"),
            ));
            None
        }
    };
    let root = absolute("rootfs", rootfs);
    let proc = absolute("procfs", procfs);
    let sys = absolute("sysfs", sysfs);
    let mut paths = root.as_deref().map(HostPaths::under).unwrap_or_default();
    if let Some(proc) = proc {
        paths.procfs = proc;
    }
    if let Some(sys) = sys {
        paths.sysfs = sys;
    }
    (paths, problems)
}

/// `host.textfile_directory`: an absolute path, if set.
pub fn textfile_directory(value: Option<&str>) -> (Option<PathBuf>, Vec<Problem>) {
    match value {
        None => (None, Vec::new()),
        Some(value) if Path::new(value).is_absolute() => (Some(PathBuf::from(value)), Vec::new()),
        Some(value) => (
            None,
            vec![(
                "host.textfile_directory".to_owned(),
                format!("`{value}` is not an absolute path"),
            )],
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Error, Sources, parse_str};

    fn parse(yaml: &str) -> Result<crate::config::Config, String> {
        let sources = Sources {
            env: &|_| None,
            read_file: &|_| Err(std::io::ErrorKind::NotFound.into()),
        };
        parse_str("test.yaml", yaml, &sources).map_err(|error| match error {
            error @ Error::Invalid { .. } => error.to_string(),
            other => panic!("unexpected error kind: {other}"),
        })
    }

    #[test]
    fn defaults_enable_everything_under_slash() {
        let config = parse("host:\n  enabled: true\n").unwrap();
        assert!(
            Collector::ALL
                .iter()
                .all(|&c| config.host.collectors.contains(c))
        );
        assert_eq!(config.host.paths, HostPaths::default());
        assert_eq!(config.host.paths.procfs, Path::new("/proc"));
        assert_eq!(config.host.textfile_directory, None);
    }

    #[test]
    fn include_and_exclude() {
        let config = parse("host:\n  collectors: { include: [cpu, netstat] }\n").unwrap();
        let on: Vec<&str> = Collector::ALL
            .iter()
            .filter(|&&c| config.host.collectors.contains(c))
            .map(|c| c.name())
            .collect();
        assert_eq!(on, ["cpu", "netstat"]);
        let config = parse("host:\n  collectors:\n    exclude: [arp, conntrack]\n").unwrap();
        assert!(!config.host.collectors.contains(Collector::Arp));
        assert!(!config.host.collectors.contains(Collector::Conntrack));
        assert!(config.host.collectors.contains(Collector::Cpu));
        assert_eq!(
            Collector::ALL
                .iter()
                .filter(|&&c| config.host.collectors.contains(c))
                .count(),
            Collector::ALL.len() - 2
        );
    }

    #[test]
    fn rootfs_derives_procfs_and_sysfs_each_overridable() {
        let config = parse("host:\n  rootfs: /host\n").unwrap();
        assert_eq!(config.host.paths, HostPaths::under(Path::new("/host")));
        assert_eq!(config.host.paths.sysfs, Path::new("/host/sys"));
        let config = parse("host:\n  rootfs: /host\n  procfs: /hp\n").unwrap();
        assert_eq!(config.host.paths.procfs, Path::new("/hp"));
        assert_eq!(config.host.paths.sysfs, Path::new("/host/sys"));
        assert_eq!(config.host.paths.rootfs, Path::new("/host"));
        let config = parse("host:\n  sysfs: /s\n  textfile_directory: /t\n").unwrap();
        assert_eq!(config.host.paths.sysfs, Path::new("/s"));
        assert_eq!(config.host.paths.procfs, Path::new("/proc"));
        assert_eq!(
            config.host.textfile_directory.as_deref(),
            Some(Path::new("/t"))
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let table = [
            (
                "host:\n  collectors:\n    exclude: [arp, nope]\n",
                "test.yaml:3:20: host.collectors.exclude[1]: unknown collector `nope`",
            ),
            (
                "host:\n  collectors:\n    include: [cpu]\n    exclude: [arp]\n",
                "test.yaml:2:3: host.collectors: set either `include` or `exclude`, not both",
            ),
            (
                "host:\n  collectors:\n    exclued: [arp]\n",
                "test.yaml:3:5: host.collectors.exclued: unknown key `exclued`",
            ),
            (
                "host:\n  rootfs: host\n",
                "test.yaml:2:3: host.rootfs: `host` is not an absolute path",
            ),
            (
                "host:\n  sysfs: sys\n",
                "test.yaml:2:3: host.sysfs: `sys` is not an absolute path",
            ),
            (
                "host:\n  textfile_directory: ./t\n",
                "test.yaml:2:3: host.textfile_directory: `./t` is not an absolute path",
            ),
        ];
        for (yaml, want) in table {
            let got = parse(yaml).unwrap_err();
            assert!(got.contains(want), "{yaml}\nwant {want}\ngot {got}");
        }
    }
}
