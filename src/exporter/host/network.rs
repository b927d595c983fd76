//! `/proc/net/dev`: node_exporter's `netdev` collector —
//! `node_network_{receive,transmit}_<column>_total{device}` for all 16 columns, and
//! `node_network_receive_nohandler_total` from sysfs (node_exporter 1.5 reads netlink,
//! whose legacy names and sums are exactly the columns of `/proc/net/dev`).

use regex::Regex;

use super::Error;
use crate::exporter::family::{Family, labels};

/// Debian's node_exporter 1.5 default `--collector.netdev.device-exclude`.
pub(crate) const DEFAULT_DEVICE_EXCLUDE: &str = "^lo$";

/// The exported columns: (index among the 16 numbers of a device line, metric suffix).
const COLUMNS: [(usize, &str); 16] = [
    (0, "receive_bytes"),
    (1, "receive_packets"),
    (2, "receive_errs"),
    (3, "receive_drop"),
    (4, "receive_fifo"),
    (5, "receive_frame"),
    (6, "receive_compressed"),
    (7, "receive_multicast"),
    (8, "transmit_bytes"),
    (9, "transmit_packets"),
    (10, "transmit_errs"),
    (11, "transmit_drop"),
    (12, "transmit_fifo"),
    (13, "transmit_colls"),
    (14, "transmit_carrier"),
    (15, "transmit_compressed"),
];

/// [`parse`], plus `receive_nohandler` read from
/// `<sysfs>/class/net/<device>/statistics/rx_nohandler` for each device kept.
pub(crate) fn collect(
    paths: &super::HostPaths,
    reader: &mut super::read::Reader,
    exclude: &Regex,
) -> Result<Vec<Family>, Error> {
    let mut families = parse(reader.read(&paths.procfs.join("net/dev"))?, exclude)?;
    let mut nohandler = Family::counter(
        "node_network_receive_nohandler",
        "Network device statistic receive_nohandler.",
    );
    let class = paths.sysfs.join("class/net");
    if let Some(first) = families.first() {
        for sample in &first.samples {
            let Some((_, device)) = sample.labels.first() else {
                continue;
            };
            let path = class.join(device).join("statistics/rx_nohandler");
            if let Some(value) = reader.number(&path) {
                nohandler.push(labels([("device", device)]), value);
            }
        }
    }
    families.push(nohandler);
    Ok(families)
}

/// Counter families, one sample per device not matching `exclude`.
pub(crate) fn parse(text: &str, exclude: &Regex) -> Result<Vec<Family>, Error> {
    let mut families: Vec<Family> = COLUMNS
        .iter()
        .map(|(_, stat)| {
            Family::counter(
                format!("node_network_{stat}"),
                format!("Network device statistic {stat}."),
            )
        })
        .collect();
    // Two header lines, then `  name: 16 numbers`.
    for line in text.lines().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((device, numbers)) = line.split_once(':') else {
            return Err(Error::parse("net/dev", format!("invalid line {line:?}")));
        };
        let device = device.trim();
        if exclude.is_match(device) {
            continue;
        }
        let mut values = [0_u64; 16];
        let mut count = 0;
        for (slot, number) in values.iter_mut().zip(numbers.split_ascii_whitespace()) {
            *slot = number
                .parse()
                .map_err(|_| Error::parse("net/dev", format!("invalid number in {line:?}")))?;
            count += 1;
        }
        if count < values.len() {
            return Err(Error::parse("net/dev", format!("short line {line:?}")));
        }
        for (family, (index, _)) in families.iter_mut().zip(COLUMNS) {
            family.push(labels([("device", device)]), values[index] as f64);
        }
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's /proc/net/dev.
    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  103460     570    0    0    0     0          0         0   103460     570    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  ifb1:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 175131793    5548    0    0    0     0          0         0   454738    3888    0    0    0     0       0          0
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
    fn counters_per_device_without_loopback() {
        let families = parse(NET_DEV, &exclude()).unwrap();
        assert_eq!(families.len(), 16);
        assert!(families.iter().all(|f| f.samples.len() == 3));
        assert_eq!(
            value(&families, "node_network_receive_bytes", "eth0"),
            Some(175_131_793.0)
        );
        assert_eq!(
            value(&families, "node_network_receive_packets", "eth0"),
            Some(5548.0)
        );
        assert_eq!(
            value(&families, "node_network_transmit_bytes", "eth0"),
            Some(454_738.0)
        );
        assert_eq!(
            value(&families, "node_network_transmit_packets", "eth0"),
            Some(3888.0)
        );
        assert_eq!(
            value(&families, "node_network_transmit_drop", "ifb1"),
            Some(0.0)
        );
        assert_eq!(value(&families, "node_network_receive_bytes", "lo"), None);
        let family = families
            .iter()
            .find(|f| f.name == "node_network_receive_errs")
            .unwrap();
        assert_eq!(family.help, "Network device statistic receive_errs.");
        assert_eq!(family.sample_name(), "node_network_receive_errs_total");
        assert_eq!(family.samples[0].labels[0].0, "device");
    }

    #[test]
    fn distinct_columns_land_in_the_right_metric() {
        let text = "h1\nh2\nwlan0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let families = parse(text, &exclude()).unwrap();
        let got: Vec<f64> = families.iter().map(|f| f.samples[0].value).collect();
        let want: Vec<f64> = (1..=16).map(f64::from).collect();
        assert_eq!(got, want);
        let names: Vec<&str> = families.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(names[5], "node_network_receive_frame");
        assert_eq!(names[13], "node_network_transmit_colls");
        assert_eq!(names[14], "node_network_transmit_carrier");
    }

    #[test]
    fn malformed_lines_fail() {
        assert!(parse("h1\nh2\neth0 1 2 3\n", &exclude()).is_err());
        assert!(parse("h1\nh2\neth0: 1 2 3\n", &exclude()).is_err());
        assert!(
            parse(
                "h1\nh2\neth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n",
                &exclude()
            )
            .is_err()
        );
        // Only headers: no devices, no samples, not an error.
        assert!(
            parse("h1\nh2\n", &exclude())
                .unwrap()
                .iter()
                .all(|f| f.samples.is_empty())
        );
    }
}
