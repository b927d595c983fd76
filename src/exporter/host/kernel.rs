//! Small `/proc` collectors of node_exporter: `filefd`, `entropy`, `arp`, `conntrack`,
//! `pressure`, `softnet`, `udp_queues` and `selinux`. Each has a pure parse function.

use std::collections::BTreeMap;

use super::read::Reader;
use super::{Error, HostPaths};
use crate::exporter::family::{Family, labels};

fn number(file: &'static str, text: &str) -> Result<f64, Error> {
    super::read::parse_number(text.trim())
        .ok_or_else(|| Error::parse(file, format!("invalid number {text:?}")))
}

/// `/proc/sys/fs/file-nr`: `node_filefd_allocated` and `node_filefd_maximum`.
pub(crate) fn filefd(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    parse_filefd(reader.read(&paths.procfs.join("sys/fs/file-nr"))?)
}

pub(crate) fn parse_filefd(text: &str) -> Result<Vec<Family>, Error> {
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let [allocated, _, maximum] = fields.as_slice() else {
        return Err(Error::parse("file-nr", format!("invalid content {text:?}")));
    };
    Ok(vec![
        Family::gauge(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
        )
        .with(Vec::new(), number("file-nr", allocated)?),
        Family::gauge(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
        )
        .with(Vec::new(), number("file-nr", maximum)?),
    ])
}

/// `/proc/sys/kernel/random/{entropy_avail,poolsize}`.
pub(crate) fn entropy(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let dir = paths.procfs.join("sys/kernel/random");
    let available = number("entropy_avail", reader.read(&dir.join("entropy_avail"))?)?;
    let pool = number("poolsize", reader.read(&dir.join("poolsize"))?)?;
    Ok(vec![
        Family::gauge("node_entropy_available_bits", "Bits of available entropy.")
            .with(Vec::new(), available),
        Family::gauge("node_entropy_pool_size_bits", "Bits of entropy pool.")
            .with(Vec::new(), pool),
    ])
}

/// `/proc/net/arp`: `node_arp_entries{device}`, the entries per interface.
pub(crate) fn arp(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    parse_arp(reader.read(&paths.procfs.join("net/arp"))?)
}

pub(crate) fn parse_arp(text: &str) -> Result<Vec<Family>, Error> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [_, _, _, _, _, device] => *counts.entry(device).or_default() += 1,
            _ => return Err(Error::parse("net/arp", format!("invalid line {line:?}"))),
        }
    }
    let mut family = Family::gauge("node_arp_entries", "ARP entries by device");
    for (device, count) in counts {
        family.push(labels([("device", device)]), count as f64);
    }
    Ok(vec![family])
}

/// The conntrack statistics node_exporter 1.5 exports: (column in
/// `/proc/net/stat/nf_conntrack`, metric suffix, help).
const CONNTRACK_STATS: [(&str, &str, &str); 8] = [
    (
        "found",
        "found",
        "Number of searched entries which were successful.",
    ),
    (
        "invalid",
        "invalid",
        "Number of packets seen which can not be tracked.",
    ),
    (
        "ignore",
        "ignore",
        "Number of packets seen which are already connected to a conntrack entry.",
    ),
    (
        "insert",
        "insert",
        "Number of entries inserted into the list.",
    ),
    (
        "insert_failed",
        "insert_failed",
        "Number of entries for which list insertion was attempted but failed.",
    ),
    (
        "drop",
        "drop",
        "Number of packets dropped due to conntrack failure.",
    ),
    (
        "early_drop",
        "early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        "search_restart",
        "search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

/// `nf_conntrack_count`, `nf_conntrack_max` and the per-CPU statistics summed.
pub(crate) fn conntrack(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let dir = paths.procfs.join("sys/net/netfilter");
    let entries = number(
        "nf_conntrack_count",
        reader.read(&dir.join("nf_conntrack_count"))?,
    )?;
    let limit = number(
        "nf_conntrack_max",
        reader.read(&dir.join("nf_conntrack_max"))?,
    )?;
    let mut families = vec![
        Family::gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
        )
        .with(Vec::new(), entries),
        Family::gauge(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
        )
        .with(Vec::new(), limit),
    ];
    if let Ok(text) = reader.read(&paths.procfs.join("net/stat/nf_conntrack")) {
        families.extend(parse_conntrack_stat(text)?);
    }
    Ok(families)
}

pub(crate) fn parse_conntrack_stat(text: &str) -> Result<Vec<Family>, Error> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::parse("nf_conntrack", "empty"))?
        .split_ascii_whitespace()
        .collect();
    let mut sums = [0_u64; CONNTRACK_STATS.len()];
    let columns: Vec<Option<usize>> = CONNTRACK_STATS
        .iter()
        .map(|(column, _, _)| header.iter().position(|h| h == column))
        .collect();
    for line in lines {
        let values: Vec<&str> = line.split_ascii_whitespace().collect();
        if values.is_empty() {
            continue;
        }
        for (sum, column) in sums.iter_mut().zip(&columns) {
            let Some(index) = column else { continue };
            let value = values
                .get(*index)
                .and_then(|v| u64::from_str_radix(v, 16).ok())
                .ok_or_else(|| Error::parse("nf_conntrack", format!("invalid line {line:?}")))?;
            *sum += value;
        }
    }
    Ok(CONNTRACK_STATS
        .iter()
        .zip(sums)
        .zip(&columns)
        .filter(|(_, column)| column.is_some())
        .map(|(((_, suffix, help), sum), _)| {
            Family::gauge(format!("node_nf_conntrack_stat_{suffix}"), *help)
                .with(Vec::new(), sum as f64)
        })
        .collect())
}

/// `/proc/pressure/{cpu,io,memory}`: the `total=` microseconds of the `some` line
/// (waiting) and, except for cpu, the `full` line (stalled), in seconds.
pub(crate) fn pressure(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let dir = paths.procfs.join("pressure");
    let mut families = Vec::with_capacity(5);
    for (resource, waiting_help, stalled_help) in [
        (
            "cpu",
            "Total time in seconds that processes have waited for CPU time",
            None,
        ),
        (
            "io",
            "Total time in seconds that processes have waited due to IO congestion",
            Some("Total time in seconds no process could make progress due to IO congestion"),
        ),
        (
            "memory",
            "Total time in seconds that processes have waited for memory",
            Some("Total time in seconds no process could make progress due to memory congestion"),
        ),
    ] {
        let (some, full) = parse_pressure(reader.read(&dir.join(resource))?)?;
        families.push(
            Family::counter(
                format!("node_pressure_{resource}_waiting_seconds"),
                waiting_help,
            )
            .with(Vec::new(), some),
        );
        if let (Some(help), Some(full)) = (stalled_help, full) {
            families.push(
                Family::counter(format!("node_pressure_{resource}_stalled_seconds"), help)
                    .with(Vec::new(), full),
            );
        }
    }
    Ok(families)
}

/// The `some` and `full` totals in seconds.
pub(crate) fn parse_pressure(text: &str) -> Result<(f64, Option<f64>), Error> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let Some((kind, rest)) = line.split_once(' ') else {
            continue;
        };
        let total = rest
            .split_ascii_whitespace()
            .find_map(|field| field.strip_prefix("total="))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| Error::parse("pressure", format!("invalid line {line:?}")))?;
        let seconds = total as f64 / 1_000_000.0;
        match kind {
            "some" => some = Some(seconds),
            "full" => full = Some(seconds),
            _ => {}
        }
    }
    let some = some.ok_or_else(|| Error::parse("pressure", "no `some` line"))?;
    Ok((some, full))
}

/// `/proc/net/softnet_stat`: processed, dropped and squeezed per CPU (hex columns).
pub(crate) fn softnet(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    parse_softnet(reader.read(&paths.procfs.join("net/softnet_stat"))?)
}

pub(crate) fn parse_softnet(text: &str) -> Result<Vec<Family>, Error> {
    let mut processed = Family::counter("node_softnet_processed", "Number of processed packets");
    let mut dropped = Family::counter("node_softnet_dropped", "Number of dropped packets");
    let mut squeezed = Family::counter(
        "node_softnet_times_squeezed",
        "Number of times processing packets ran out of quota",
    );
    for (cpu, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let mut columns = line
            .split_ascii_whitespace()
            .map(|c| u64::from_str_radix(c, 16));
        let (Some(Ok(p)), Some(Ok(d)), Some(Ok(s))) =
            (columns.next(), columns.next(), columns.next())
        else {
            return Err(Error::parse(
                "softnet_stat",
                format!("invalid line {line:?}"),
            ));
        };
        let cpu = cpu.to_string();
        processed.push(labels([("cpu", &cpu)]), p as f64);
        dropped.push(labels([("cpu", &cpu)]), d as f64);
        squeezed.push(labels([("cpu", &cpu)]), s as f64);
    }
    Ok(vec![dropped, processed, squeezed])
}

/// `/proc/net/udp` and `udp6`: the summed `tx_queue` and `rx_queue` per IP version.
pub(crate) fn udp_queues(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let mut family = Family::gauge(
        "node_udp_queues",
        "Number of allocated memory in the kernel for UDP datagrams in bytes.",
    );
    let (tx, rx) = parse_udp(reader.read(&paths.procfs.join("net/udp"))?)?;
    family.push(labels([("ip", "v4"), ("queue", "rx")]), rx);
    family.push(labels([("ip", "v4"), ("queue", "tx")]), tx);
    // Without IPv6 the file is missing; node_exporter then reports v4 only.
    if let Ok(text) = reader.read(&paths.procfs.join("net/udp6")) {
        let (tx, rx) = parse_udp(text)?;
        family.push(labels([("ip", "v6"), ("queue", "rx")]), rx);
        family.push(labels([("ip", "v6"), ("queue", "tx")]), tx);
    }
    Ok(vec![family])
}

/// (tx, rx) summed over the socket lines.
pub(crate) fn parse_udp(text: &str) -> Result<(f64, f64), Error> {
    let (mut tx, mut rx) = (0_u64, 0_u64);
    for line in text.lines().skip(1) {
        let Some(queues) = line.split_ascii_whitespace().nth(4) else {
            continue;
        };
        let parsed = queues.split_once(':').and_then(|(t, r)| {
            Some((
                u64::from_str_radix(t, 16).ok()?,
                u64::from_str_radix(r, 16).ok()?,
            ))
        });
        let Some((t, r)) = parsed else {
            return Err(Error::parse("net/udp", format!("invalid line {line:?}")));
        };
        tx += t;
        rx += r;
    }
    Ok((tx as f64, rx as f64))
}

/// `node_selinux_enabled`, and the modes when it is: enabled when selinuxfs answers.
pub(crate) fn selinux(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let enforce = reader.number(&paths.sysfs.join("fs/selinux/enforce"));
    let mut families = vec![
        Family::gauge(
            "node_selinux_enabled",
            "SELinux is enabled, 1 is true, 0 is false",
        )
        .with(Vec::new(), if enforce.is_some() { 1.0 } else { 0.0 }),
    ];
    if let Some(current) = enforce {
        families.push(
            Family::gauge(
                "node_selinux_current_mode",
                "SELinux is enforcing, 1 is true, 0 is false",
            )
            .with(Vec::new(), current),
        );
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(families: &[Family], name: &str) -> Vec<(Vec<String>, f64)> {
        families
            .iter()
            .find(|f| f.name == name)
            .map(|f| {
                f.samples
                    .iter()
                    .map(|s| (s.labels.iter().map(|(_, v)| v.clone()).collect(), s.value))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn filefd_first_and_third() {
        let families = parse_filefd("1197\t0\t2466116\n").unwrap();
        assert_eq!(values(&families, "node_filefd_allocated")[0].1, 1197.0);
        assert_eq!(values(&families, "node_filefd_maximum")[0].1, 2_466_116.0);
        assert!(parse_filefd("1 2\n").is_err());
        assert!(parse_filefd("x 0 3\n").is_err());
    }

    #[test]
    fn arp_counts_per_device() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
                    10.0.0.1         0x1         0x2         02:fc:00:00:00:02     *        eth0\n\
                    10.0.0.7         0x1         0x2         02:fc:00:00:00:07     *        eth0\n\
                    10.1.0.1         0x1         0x2         02:fc:00:00:00:09     *        eth1\n";
        let families = parse_arp(text).unwrap();
        assert_eq!(
            values(&families, "node_arp_entries"),
            [
                (vec!["eth0".to_owned()], 2.0),
                (vec!["eth1".to_owned()], 1.0)
            ]
        );
        assert!(parse_arp("h\n1 2 3\n").is_err());
    }

    #[test]
    fn conntrack_stats_are_summed_over_cpus() {
        let text = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n\
                    00000000  00000000 00000010 00000000 00000001 00000000 00000000 00000000 00000002 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000003\n\
                    00000000  00000000 00000001 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 0000000a\n";
        let families = parse_conntrack_stat(text).unwrap();
        assert_eq!(families.len(), 8);
        assert_eq!(values(&families, "node_nf_conntrack_stat_found")[0].1, 17.0);
        assert_eq!(
            values(&families, "node_nf_conntrack_stat_invalid")[0].1,
            2.0
        );
        assert_eq!(values(&families, "node_nf_conntrack_stat_insert")[0].1, 2.0);
        assert_eq!(
            values(&families, "node_nf_conntrack_stat_search_restart")[0].1,
            13.0
        );
        assert!(parse_conntrack_stat("found\nzz\n").is_err());
    }

    #[test]
    fn pressure_totals_in_seconds() {
        let text = "some avg10=5.43 avg60=4.01 avg300=4.29 total=38304453\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n";
        assert_eq!(parse_pressure(text).unwrap(), (38.304453, Some(2.5)));
        assert_eq!(
            parse_pressure("some avg10=0 avg60=0 avg300=0 total=7\n").unwrap(),
            (0.000007, None)
        );
        assert!(parse_pressure("full avg10=0 total=1\n").is_err());
        assert!(parse_pressure("some avg10=0\n").is_err());
    }

    #[test]
    fn softnet_per_cpu_hex() {
        let text = "000055cb 00000002 0000000f 00000000\n00007f21 00000000 00000000 00000000\n";
        let families = parse_softnet(text).unwrap();
        assert_eq!(
            values(&families, "node_softnet_processed"),
            [
                (vec!["0".to_owned()], 21963.0),
                (vec!["1".to_owned()], 32545.0)
            ]
        );
        assert_eq!(values(&families, "node_softnet_dropped")[0].1, 2.0);
        assert_eq!(values(&families, "node_softnet_times_squeezed")[0].1, 15.0);
        assert!(parse_softnet("zz 1 2\n").is_err());
    }

    #[test]
    fn udp_queues_are_summed() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                    \x20 1: 00000000:0044 00000000:0000 07 00000010:00000200 00:00000000 00000000     0        0 1 2 0 0\n\
                    \x20 2: 00000000:0045 00000000:0000 07 00000001:00000000 00:00000000 00000000     0        0 1 2 0 0\n";
        assert_eq!(parse_udp(text).unwrap(), (17.0, 512.0));
        assert!(parse_udp("h\n 1: a b c zz\n").is_err());
    }
}
