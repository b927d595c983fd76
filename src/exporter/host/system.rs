//! node_exporter's `time` (`node_time_seconds`) and `uname` (`node_uname_info`) collectors.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Error;
use crate::exporter::family::{Family, labels};

/// `node_time_seconds`: the wall clock, with sub-second precision.
pub(crate) fn time() -> Result<Vec<Family>, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|error| Error::unavailable("clock", &error))?;
    Ok(vec![
        Family::gauge(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
        )
        .with(Vec::new(), now.as_secs_f64()),
    ])
}

/// The fields of `uname(2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uname {
    pub(crate) sysname: String,
    pub(crate) nodename: String,
    pub(crate) release: String,
    pub(crate) version: String,
    pub(crate) machine: String,
    pub(crate) domainname: String,
}

/// `node_uname_info{domainname,machine,nodename,release,sysname,version} 1`.
pub(crate) fn uname() -> Result<Vec<Family>, Error> {
    Ok(vec![uname_family(&read_uname()?)])
}

fn uname_family(uname: &Uname) -> Family {
    Family::gauge(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
    )
    .with(
        labels([
            ("domainname", &uname.domainname),
            ("machine", &uname.machine),
            ("nodename", &uname.nodename),
            ("release", &uname.release),
            ("sysname", &uname.sysname),
            ("version", &uname.version),
        ]),
        1.0,
    )
}

#[cfg(unix)]
pub(crate) fn read_uname() -> Result<Uname, Error> {
    let raw = rustix::system::uname();
    let text = |s: &std::ffi::CStr| s.to_string_lossy().into_owned();
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let domainname = text(raw.domainname());
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let domainname = String::from("(none)");
    Ok(Uname {
        sysname: text(raw.sysname()),
        nodename: text(raw.nodename()),
        release: text(raw.release()),
        version: text(raw.version()),
        machine: text(raw.machine()),
        domainname,
    })
}

/// Without `uname(2)`, the closest values sysinfo knows.
#[cfg(not(unix))]
pub(crate) fn read_uname() -> Result<Uname, Error> {
    use sysinfo::System;
    Ok(Uname {
        sysname: System::name().map_err(|error| Error::unavailable("os name", &error))?,
        nodename: System::host_name().unwrap_or_default(),
        release: System::kernel_version().unwrap_or_default(),
        version: System::os_version().unwrap_or_default(),
        machine: System::cpu_arch(),
        domainname: String::from("(none)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_now() {
        let families = time().unwrap();
        let value = families[0].samples[0].value;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - value).abs() < 5.0);
        assert!(value.fract() != 0.0 || value > 1.0e9);
        assert_eq!(families[0].name, "node_time_seconds");
    }

    #[test]
    fn uname_labels_in_node_exporter_order() {
        let family = uname_family(&Uname {
            sysname: "Linux".into(),
            nodename: "vm".into(),
            release: "6.18.44-fc-v669".into(),
            version: "#1 SMP PREEMPT_DYNAMIC @0".into(),
            machine: "x86_64".into(),
            domainname: "(none)".into(),
        });
        let names: Vec<&str> = family.samples[0]
            .labels
            .iter()
            .map(|(k, _)| k.as_ref())
            .collect();
        assert_eq!(
            names,
            [
                "domainname",
                "machine",
                "nodename",
                "release",
                "sysname",
                "version"
            ]
        );
        assert_eq!(family.samples[0].labels[4].1, "Linux");
        assert_eq!(family.samples[0].value, 1.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn uname_reads_this_kernel() {
        let uname = read_uname().unwrap();
        assert_eq!(uname.sysname, "Linux");
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(uname.release, release.trim_end());
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(uname.nodename, hostname.trim_end());
    }
}
