//! `/proc/net/dev`: node_exporter's `netdev` collector —
//! `node_network_{receive,transmit}_{bytes,packets,errs,drop}_total{device}`.

use regex::Regex;

use super::Error;
use crate::exporter::family::{Family, labels};

/// Debian's node_exporter 1.5 default `--collector.netdev.device-exclude`.
pub(crate) const DEFAULT_DEVICE_EXCLUDE: &str = "^lo$";

/// The exported columns: (index among the 16 numbers of a device line, metric suffix).
const COLUMNS: [(usize, &str); 8] = [
    (0, "receive_bytes"),
    (1, "receive_packets"),
    (2, "receive_errs"),
    (3, "receive_drop"),
    (8, "transmit_bytes"),
    (9, "transmit_packets"),
    (10, "transmit_errs"),
    (11, "transmit_drop"),
];

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
        assert_eq!(families.len(), 8);
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
        assert_eq!(got, [1.0, 2.0, 3.0, 4.0, 9.0, 10.0, 11.0, 12.0]);
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
