//! `/proc/diskstats`: node_exporter's `diskstats` collector — completed and merged I/Os,
//! bytes (sectors × 512), time spent, discards and flushes, as counters with the label
//! `device`, the I/Os in progress, and `node_disk_info` from udev's database.

use std::path::Path;

use regex::Regex;

use super::Error;
use super::read::Reader;
use crate::exporter::family::{Family, Kind, labels};

/// node_exporter 1.5's default `--collector.diskstats.device-exclude` (partitions, loop,
/// ram and floppy devices).
pub(crate) const DEFAULT_DEVICE_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// The kernel counts sectors of 512 bytes whatever the device's sector size.
const SECTOR_BYTES: f64 = 512.0;
/// Times are in milliseconds; node_exporter multiplies by this (not divides by 1000).
const SECONDS_PER_TICK: f64 = 0.001;

/// (index among the numbers after the device name, name, help, scale, kind).
const COLUMNS: [(usize, &str, &str, f64, Kind); 17] = [
    (
        0,
        "node_disk_reads_completed",
        "The total number of reads completed successfully.",
        1.0,
        Kind::Counter,
    ),
    (
        1,
        "node_disk_reads_merged",
        "The total number of reads merged.",
        1.0,
        Kind::Counter,
    ),
    (
        2,
        "node_disk_read_bytes",
        "The total number of bytes read successfully.",
        SECTOR_BYTES,
        Kind::Counter,
    ),
    (
        3,
        "node_disk_read_time_seconds",
        "The total number of seconds spent by all reads.",
        SECONDS_PER_TICK,
        Kind::Counter,
    ),
    (
        4,
        "node_disk_writes_completed",
        "The total number of writes completed successfully.",
        1.0,
        Kind::Counter,
    ),
    (
        5,
        "node_disk_writes_merged",
        "The number of writes merged.",
        1.0,
        Kind::Counter,
    ),
    (
        6,
        "node_disk_written_bytes",
        "The total number of bytes written successfully.",
        SECTOR_BYTES,
        Kind::Counter,
    ),
    (
        7,
        "node_disk_write_time_seconds",
        "This is the total number of seconds spent by all writes.",
        SECONDS_PER_TICK,
        Kind::Counter,
    ),
    (
        8,
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        1.0,
        Kind::Gauge,
    ),
    (
        9,
        "node_disk_io_time_seconds",
        "Total seconds spent doing I/Os.",
        SECONDS_PER_TICK,
        Kind::Counter,
    ),
    (
        10,
        "node_disk_io_time_weighted_seconds",
        "The weighted # of seconds spent doing I/Os.",
        SECONDS_PER_TICK,
        Kind::Counter,
    ),
    (
        11,
        "node_disk_discards_completed",
        "The total number of discards completed successfully.",
        1.0,
        Kind::Counter,
    ),
    (
        12,
        "node_disk_discards_merged",
        "The total number of discards merged.",
        1.0,
        Kind::Counter,
    ),
    (
        13,
        "node_disk_discarded_sectors",
        "The total number of sectors discarded successfully.",
        1.0,
        Kind::Counter,
    ),
    (
        14,
        "node_disk_discard_time_seconds",
        "This is the total number of seconds spent by all discards.",
        SECONDS_PER_TICK,
        Kind::Counter,
    ),
    (
        15,
        "node_disk_flush_requests",
        "The total number of flush requests completed successfully",
        1.0,
        Kind::Counter,
    ),
    (
        16,
        "node_disk_flush_requests_time_seconds",
        "This is the total number of seconds spent by all flush requests.",
        SECONDS_PER_TICK,
        Kind::Counter,
    ),
];

/// The numbers every kernel since 2.6 prints for a whole disk.
const MIN_NUMBERS: usize = 11;

/// One whole-disk line of `/proc/diskstats`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DiskLine<'a> {
    pub(crate) major: &'a str,
    pub(crate) minor: &'a str,
    pub(crate) device: &'a str,
}

/// Counter families (and `io_now`), one sample per device not matching `exclude`; a
/// column exists only where the kernel prints it (discards since 4.18, flushes since
/// 5.5). Lines too short to hold the classic 11 numbers (2.4-era partition lines) are
/// skipped. Also returns the devices kept, for `node_disk_info`.
pub(crate) fn parse<'a>(
    text: &'a str,
    exclude: &Regex,
) -> Result<(Vec<Family>, Vec<DiskLine<'a>>), Error> {
    let mut families: Vec<Family> = COLUMNS
        .iter()
        .map(|&(_, name, help, _, kind)| match kind {
            Kind::Gauge => Family::gauge(name, help),
            _ => Family::counter(name, help),
        })
        .collect();
    let mut devices = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(major), Some(minor), Some(device)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if exclude.is_match(device) {
            continue;
        }
        let mut values = [0_u64; COLUMNS.len()];
        let mut count = 0;
        for (slot, number) in values.iter_mut().zip(fields) {
            *slot = number
                .parse()
                .map_err(|_| Error::parse("diskstats", format!("invalid number in {line:?}")))?;
            count += 1;
        }
        if count < MIN_NUMBERS {
            continue;
        }
        for (family, &(index, _, _, scale, _)) in families.iter_mut().zip(&COLUMNS) {
            if index < count {
                family.push(labels([("device", device)]), values[index] as f64 * scale);
            }
        }
        devices.push(DiskLine {
            major,
            minor,
            device,
        });
    }
    Ok((families, devices))
}

/// `node_disk_info{device,major,minor,model,path,revision,serial,wwn}` with the udev
/// properties of `<rootfs>/run/udev/data/b<major>:<minor>` (empty where there are none).
pub(crate) fn info(devices: &[DiskLine<'_>], udev: &Path, reader: &mut Reader) -> Family {
    let mut family = Family::gauge("node_disk_info", "Info of /sys/block/<block_device>.");
    for disk in devices {
        let path = udev.join(format!("b{}:{}", disk.major, disk.minor));
        let properties = reader.read(&path).map(udev_properties).unwrap_or_default();
        let get = |key: &str| {
            properties
                .iter()
                .find(|(k, _)| *k == key)
                .map_or("", |(_, v)| v.as_str())
        };
        let serial = match get("ID_SERIAL_SHORT") {
            "" => get("ID_SERIAL"),
            short => short,
        };
        family.push(
            labels([
                ("device", disk.device),
                ("major", disk.major),
                ("minor", disk.minor),
                ("model", get("ID_MODEL")),
                ("path", get("ID_PATH")),
                ("revision", get("ID_REVISION")),
                ("serial", serial),
                ("wwn", get("ID_WWN")),
            ]),
            1.0,
        );
    }
    family
}

/// The `E:KEY=value` lines of a udev database file.
fn udev_properties(text: &str) -> Vec<(&'static str, String)> {
    const KEYS: [&str; 6] = [
        "ID_MODEL",
        "ID_PATH",
        "ID_REVISION",
        "ID_SERIAL",
        "ID_SERIAL_SHORT",
        "ID_WWN",
    ];
    text.lines()
        .filter_map(|line| line.strip_prefix("E:")?.split_once('='))
        .filter_map(|(key, value)| {
            let key = KEYS.into_iter().find(|k| *k == key)?;
            Some((key, value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's /proc/diskstats plus a partition and an NVMe namespace.
    const DISKSTATS: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 62449 14132 3276922 18107 29962 14619 2723752 12865 0 8912 31833 10007 56 1081584 623 5706 237
 254       1 vda1 100 0 800 10 0 0 0 0 0 10 10 0 0 0 0 0 0
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 0 0 0 0
 259       1 nvme0n1p1 1 2 3 4 5 6 7 8 9 10 11 0 0 0 0
   8       1 sda1 4 5 6 7
";

    fn exclude() -> Regex {
        Regex::new(DEFAULT_DEVICE_EXCLUDE).unwrap()
    }

    fn value(families: &[Family], name: &str, device: &str) -> Option<f64> {
        families
            .iter()
            .find(|f| f.name == name)?
            .samples
            .iter()
            .find(|s| s.labels[0].1 == device)
            .map(|s| s.value)
    }

    #[test]
    fn whole_disks_with_node_exporter_units() {
        let (families, disks) = parse(DISKSTATS, &exclude()).unwrap();
        assert_eq!(families.len(), 17);
        assert_eq!(
            disks[0],
            DiskLine {
                major: "254",
                minor: "0",
                device: "vda"
            }
        );
        assert_eq!(
            value(&families, "node_disk_reads_merged", "vda"),
            Some(14132.0)
        );
        assert_eq!(
            value(&families, "node_disk_io_time_weighted_seconds", "vda"),
            Some(31_833.0 * 0.001)
        );
        assert_eq!(
            value(&families, "node_disk_discards_completed", "vda"),
            Some(10007.0)
        );
        assert_eq!(
            value(&families, "node_disk_discarded_sectors", "vda"),
            Some(1_081_584.0)
        );
        assert_eq!(
            value(&families, "node_disk_flush_requests", "vda"),
            Some(5706.0)
        );
        assert_eq!(
            value(&families, "node_disk_flush_requests_time_seconds", "vda"),
            Some(237.0 * 0.001)
        );
        assert_eq!(value(&families, "node_disk_io_now", "vda"), Some(0.0));
        // nvme0n1 has 15 numbers: discards but no flushes.
        assert_eq!(
            value(&families, "node_disk_discard_time_seconds", "nvme0n1"),
            Some(0.0)
        );
        assert_eq!(
            value(&families, "node_disk_flush_requests", "nvme0n1"),
            None
        );
        let devices: Vec<&str> = families[0]
            .samples
            .iter()
            .map(|s| s.labels[0].1.as_str())
            .collect();
        assert_eq!(devices, ["vda", "zram0", "nvme0n1"]);
        assert_eq!(
            value(&families, "node_disk_reads_completed", "vda"),
            Some(62449.0)
        );
        assert_eq!(
            value(&families, "node_disk_read_bytes", "vda"),
            Some(3_276_922.0 * 512.0)
        );
        assert_eq!(
            value(&families, "node_disk_read_time_seconds", "vda"),
            Some(18107.0 * 0.001)
        );
        assert_eq!(
            value(&families, "node_disk_writes_completed", "vda"),
            Some(29962.0)
        );
        assert_eq!(
            value(&families, "node_disk_written_bytes", "vda"),
            Some(2_723_752.0 * 512.0)
        );
        assert_eq!(
            value(&families, "node_disk_write_time_seconds", "vda"),
            Some(12.865)
        );
        assert_eq!(
            value(&families, "node_disk_io_time_seconds", "vda"),
            Some(8.912)
        );
        let read = families
            .iter()
            .find(|f| f.name == "node_disk_read_bytes")
            .unwrap();
        assert_eq!(read.sample_name(), "node_disk_read_bytes_total");
    }

    #[test]
    fn info_from_udev() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b8:0"),
            "S:disk/by-id/x\nE:ID_MODEL=QEMU_HARDDISK\nE:ID_SERIAL=QM0001-long\nE:ID_SERIAL_SHORT=QM0001\nE:ID_PATH=pci-0000:00:05.0\n",
        )
        .unwrap();
        let disks = [
            DiskLine {
                major: "8",
                minor: "0",
                device: "sda",
            },
            DiskLine {
                major: "254",
                minor: "0",
                device: "vda",
            },
        ];
        let family = info(&disks, dir.path(), &mut Reader::new());
        let labels: Vec<Vec<&str>> = family
            .samples
            .iter()
            .map(|s| s.labels.iter().map(|(_, v)| v.as_str()).collect())
            .collect();
        assert_eq!(
            labels,
            [
                vec![
                    "sda",
                    "8",
                    "0",
                    "QEMU_HARDDISK",
                    "pci-0000:00:05.0",
                    "",
                    "QM0001",
                    ""
                ],
                vec!["vda", "254", "0", "", "", "", "", ""],
            ]
        );
    }

    #[test]
    fn default_exclude_matches_node_exporter() {
        let re = exclude();
        for excluded in [
            "loop0",
            "ram1",
            "fd0",
            "sda1",
            "vda2",
            "xvda1",
            "hdb3",
            "nvme0n1p2",
        ] {
            assert!(re.is_match(excluded), "{excluded}");
        }
        for kept in [
            "sda", "vda", "nvme0n1", "dm-0", "md0", "zram0", "mmcblk0", "sr0",
        ] {
            assert!(!re.is_match(kept), "{kept}");
        }
    }

    #[test]
    fn garbage_fails_and_short_lines_are_skipped() {
        assert!(parse("8 0 sda 1 2 x 4 5 6 7 8 9 10 11\n", &exclude()).is_err());
        let (families, disks) = parse("8 0 sda 1 2 3\n\n", &exclude()).unwrap();
        assert!(disks.is_empty());
        assert!(families.iter().all(|f| f.samples.is_empty()));
    }
}
