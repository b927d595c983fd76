//! `/proc/diskstats`: node_exporter's `diskstats` collector — completed I/Os, bytes
//! (sectors × 512) and time spent, as counters with the label `device`.

use regex::Regex;

use super::Error;
use crate::exporter::family::{Family, labels};

/// node_exporter 1.5's default `--collector.diskstats.device-exclude` (partitions, loop,
/// ram and floppy devices).
pub(crate) const DEFAULT_DEVICE_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// The kernel counts sectors of 512 bytes whatever the device's sector size.
const SECTOR_BYTES: f64 = 512.0;
/// Times are in milliseconds; node_exporter multiplies by this (not divides by 1000).
const SECONDS_PER_TICK: f64 = 0.001;

/// (index among the numbers after the device name, name, help, scale).
const COLUMNS: [(usize, &str, &str, f64); 7] = [
    (
        0,
        "node_disk_reads_completed",
        "The total number of reads completed successfully.",
        1.0,
    ),
    (
        2,
        "node_disk_read_bytes",
        "The total number of bytes read successfully.",
        SECTOR_BYTES,
    ),
    (
        3,
        "node_disk_read_time_seconds",
        "The total number of seconds spent by all reads.",
        SECONDS_PER_TICK,
    ),
    (
        4,
        "node_disk_writes_completed",
        "The total number of writes completed successfully.",
        1.0,
    ),
    (
        6,
        "node_disk_written_bytes",
        "The total number of bytes written successfully.",
        SECTOR_BYTES,
    ),
    (
        7,
        "node_disk_write_time_seconds",
        "This is the total number of seconds spent by all writes.",
        SECONDS_PER_TICK,
    ),
    (
        9,
        "node_disk_io_time_seconds",
        "Total seconds spent doing I/Os.",
        SECONDS_PER_TICK,
    ),
];

/// The numbers every kernel since 2.6 prints for a whole disk.
const MIN_NUMBERS: usize = 11;

/// Counter families, one sample per device not matching `exclude`. Lines too short to
/// hold the classic 11 numbers (2.4-era partition lines) are skipped.
pub(crate) fn parse(text: &str, exclude: &Regex) -> Result<Vec<Family>, Error> {
    let mut families: Vec<Family> = COLUMNS
        .iter()
        .map(|&(_, name, help, _)| Family::counter(name, help))
        .collect();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(_major), Some(_minor), Some(device)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if exclude.is_match(device) {
            continue;
        }
        let mut values = [0_u64; MIN_NUMBERS];
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
        for (family, &(index, _, _, scale)) in families.iter_mut().zip(&COLUMNS) {
            family.push(labels([("device", device)]), values[index] as f64 * scale);
        }
    }
    Ok(families)
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
        let families = parse(DISKSTATS, &exclude()).unwrap();
        assert_eq!(families.len(), 7);
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
        let families = parse("8 0 sda 1 2 3\n\n", &exclude()).unwrap();
        assert!(families.iter().all(|f| f.samples.is_empty()));
    }
}
