//! node_exporter's `time` (`node_time_seconds`, the time zone, the clock sources) and
//! `uname` (`node_uname_info`) collectors.

use std::time::{SystemTime, UNIX_EPOCH};

use super::read::Reader;
use super::{Error, HostPaths};
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

/// The whole `time` collector: [`time`], `node_time_zone_offset_seconds{time_zone}` and
/// `node_time_clocksource_{available,current}_info{clocksource,device}` from
/// `<sysfs>/devices/system/clocksource/clocksource<N>`.
pub(crate) fn time_collector(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let mut families = time()?;
    let (zone, offset) = time_zone();
    families.push(
        Family::gauge(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
        )
        .with(labels([("time_zone", &zone)]), f64::from(offset)),
    );
    let mut available = Family::gauge(
        "node_time_clocksource_available_info",
        "Available clocksources read from '/sys/devices/system/clocksource'.",
    );
    let mut current = Family::gauge(
        "node_time_clocksource_current_info",
        "Current clocksource read from '/sys/devices/system/clocksource'.",
    );
    let dir = paths.sysfs.join("devices/system/clocksource");
    let mut devices: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|name| Some(name.strip_prefix("clocksource")?.to_owned()))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .collect()
        })
        .unwrap_or_default();
    devices.sort_unstable();
    for device in &devices {
        let base = dir.join(format!("clocksource{device}"));
        if let Ok(text) = reader.value(&base.join("available_clocksource")) {
            for source in text.split_ascii_whitespace() {
                available.push(labels([("clocksource", source), ("device", device)]), 1.0);
            }
        }
        if let Ok(source) = reader.value(&base.join("current_clocksource")) {
            current.push(labels([("clocksource", source), ("device", device)]), 1.0);
        }
    }
    families.push(available);
    families.push(current);
    Ok(families)
}

/// The local zone's abbreviation and offset from UTC in seconds, as Go's
/// `time.Now().Zone()` gives them: from `TZ`, else `/etc/localtime`, else UTC.
fn time_zone() -> (String, i32) {
    use chrono::{Offset as _, TimeZone as _};
    let now = chrono::Utc::now();
    let name = std::env::var("TZ")
        .ok()
        .map(|tz| tz.trim_start_matches(':').to_owned())
        .filter(|tz| !tz.is_empty())
        .or_else(|| {
            let target = std::fs::read_link("/etc/localtime").ok()?;
            let target = target.to_str()?;
            let (_, name) = target.split_once("zoneinfo/")?;
            Some(name.to_owned())
        });
    if let Some(tz) = name.and_then(|n| n.parse::<chrono_tz::Tz>().ok()) {
        let local = tz.from_utc_datetime(&now.naive_utc());
        return (
            local.format("%Z").to_string(),
            local.offset().fix().local_minus_utc(),
        );
    }
    let offset = chrono::Local::now().offset().local_minus_utc();
    if offset == 0 {
        ("UTC".to_owned(), 0)
    } else {
        (chrono::Local::now().format("%:z").to_string(), offset)
    }
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
    fn clocksources_from_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let dir = root
            .path()
            .join("sys/devices/system/clocksource/clocksource0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("available_clocksource"), "kvm-clock tsc \n").unwrap();
        std::fs::write(dir.join("current_clocksource"), "tsc\n").unwrap();
        let families = time_collector(&HostPaths::under(root.path()), &mut Reader::new()).unwrap();
        let find = |name: &str| families.iter().find(|f| f.name == name).unwrap();
        let available: Vec<(&str, &str)> = find("node_time_clocksource_available_info")
            .samples
            .iter()
            .map(|s| (s.labels[0].1.as_str(), s.labels[1].1.as_str()))
            .collect();
        assert_eq!(available, [("kvm-clock", "0"), ("tsc", "0")]);
        assert_eq!(
            find("node_time_clocksource_current_info").samples[0].labels[0].1,
            "tsc"
        );
        let zone = find("node_time_zone_offset_seconds");
        assert_eq!(zone.samples[0].labels[0].0, "time_zone");
        assert!(zone.samples[0].value.abs() <= 14.0 * 3600.0);
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
