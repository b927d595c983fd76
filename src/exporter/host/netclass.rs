//! `/sys/class/net/<device>/*`: node_exporter's `netclass` collector —
//! `node_network_up`, `node_network_info{address,broadcast,device,duplex,ifalias,operstate}`
//! and one gauge (or counter) per numeric attribute. An attribute the kernel refuses to
//! read (the carrier of a device that is down) is left out, as node_exporter does.

use std::path::Path;

use super::read::Reader;
use super::{Error, HostPaths};
use crate::exporter::family::{Family, Kind, labels};

/// (attribute file, metric suffix, kind, scale).
const NUMERIC: [(&str, &str, Kind, f64); 17] = [
    ("addr_assign_type", "address_assign_type", Kind::Gauge, 1.0),
    ("carrier", "carrier", Kind::Gauge, 1.0),
    ("carrier_changes", "carrier_changes", Kind::Counter, 1.0),
    ("carrier_up_count", "carrier_up_changes", Kind::Counter, 1.0),
    (
        "carrier_down_count",
        "carrier_down_changes",
        Kind::Counter,
        1.0,
    ),
    ("dev_id", "device_id", Kind::Gauge, 1.0),
    ("dormant", "dormant", Kind::Gauge, 1.0),
    ("flags", "flags", Kind::Gauge, 1.0),
    ("ifindex", "iface_id", Kind::Gauge, 1.0),
    ("iflink", "iface_link", Kind::Gauge, 1.0),
    ("link_mode", "iface_link_mode", Kind::Gauge, 1.0),
    ("mtu", "mtu_bytes", Kind::Gauge, 1.0),
    ("name_assign_type", "name_assign_type", Kind::Gauge, 1.0),
    ("netdev_group", "net_dev_group", Kind::Gauge, 1.0),
    // Mbit/s → bytes/s; node_exporter keeps the kernel's -1 ("unknown") as -125000.
    ("speed", "speed_bytes", Kind::Gauge, 125_000.0),
    ("tx_queue_len", "transmit_queue_length", Kind::Gauge, 1.0),
    ("type", "protocol_type", Kind::Gauge, 1.0),
];

/// One family per numeric attribute plus `up` and `info`, over every device directory.
pub(crate) fn collect(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let dir = paths.sysfs.join("class/net");
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read {
        path: dir.clone(),
        source,
    })?;
    let mut devices: Vec<String> = entries
        .filter_map(Result::ok)
        // `bonding_masters` is a file beside the device links.
        .filter(|entry| !entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    devices.sort_unstable();

    let mut up = Family::gauge(
        "node_network_up",
        "Value is 1 if operstate is 'up', 0 otherwise.",
    );
    let mut info = Family::gauge(
        "node_network_info",
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
    );
    let mut numeric: Vec<Family> = NUMERIC
        .iter()
        .map(|&(_, suffix, kind, _)| {
            let help = format!("Network device property: {suffix}");
            match kind {
                Kind::Counter => {
                    // node_exporter names these `…_changes_total`.
                    Family::counter(format!("node_network_{suffix}"), format!("{help}_total"))
                }
                _ => Family::gauge(format!("node_network_{suffix}"), help),
            }
        })
        .collect();
    for device in &devices {
        let base = dir.join(device);
        let text = |reader: &mut Reader, name: &str| -> String {
            reader
                .value(&base.join(name))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let operstate = text(reader, "operstate");
        let address = text(reader, "address");
        let broadcast = text(reader, "broadcast");
        let duplex = text(reader, "duplex");
        let ifalias = text(reader, "ifalias");
        up.push(
            labels([("device", device)]),
            if operstate == "up" { 1.0 } else { 0.0 },
        );
        info.push(
            labels([
                ("address", &address),
                ("broadcast", &broadcast),
                ("device", device),
                ("duplex", &duplex),
                ("ifalias", &ifalias),
                ("operstate", &operstate),
            ]),
            1.0,
        );
        push_numeric(&mut numeric, &base, device, reader);
    }
    let mut families = Vec::with_capacity(NUMERIC.len() + 2);
    families.push(up);
    families.push(info);
    families.extend(numeric);
    Ok(families)
}

fn push_numeric(families: &mut [Family], base: &Path, device: &str, reader: &mut Reader) {
    for (family, &(file, _, _, scale)) in families.iter_mut().zip(&NUMERIC) {
        if let Some(value) = reader.number(&base.join(file)) {
            family.push(labels([("device", device)]), value * scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn sample(families: &[Family], name: &str, device: &str) -> Option<f64> {
        families
            .iter()
            .find(|f| f.name == name)?
            .samples
            .iter()
            .find(|s| s.labels.iter().any(|(k, v)| k == "device" && v == device))
            .map(|s| s.value)
    }

    #[test]
    fn reads_attributes_like_node_exporter() {
        let root = tempfile::tempdir().unwrap();
        let net = root.path().join("sys/class/net");
        let eth0 = net.join("eth0");
        let ifb0 = net.join("ifb0");
        fs::create_dir_all(&eth0).unwrap();
        fs::create_dir_all(&ifb0).unwrap();
        fs::write(net.join("bonding_masters"), "\n").unwrap();
        for (name, value) in [
            ("operstate", "up"),
            ("address", "02:fc:00:00:00:01"),
            ("broadcast", "ff:ff:ff:ff:ff:ff"),
            ("duplex", "unknown"),
            ("ifalias", ""),
            ("mtu", "1400"),
            ("speed", "-1"),
            ("flags", "0x1003"),
            ("carrier", "1"),
            ("carrier_changes", "2"),
            ("ifindex", "4"),
            ("type", "1"),
        ] {
            fs::write(eth0.join(name), format!("{value}\n")).unwrap();
        }
        fs::write(ifb0.join("operstate"), "down\n").unwrap();
        fs::write(ifb0.join("mtu"), "1500\n").unwrap();
        // Reading the carrier of a down device fails with EINVAL: here, garbage.
        fs::write(ifb0.join("carrier"), "").unwrap();
        let paths = HostPaths::under(root.path());
        let families = collect(&paths, &mut Reader::new()).unwrap();
        assert_eq!(sample(&families, "node_network_up", "eth0"), Some(1.0));
        assert_eq!(sample(&families, "node_network_up", "ifb0"), Some(0.0));
        assert_eq!(
            sample(&families, "node_network_mtu_bytes", "eth0"),
            Some(1400.0)
        );
        assert_eq!(
            sample(&families, "node_network_mtu_bytes", "ifb0"),
            Some(1500.0)
        );
        assert_eq!(
            sample(&families, "node_network_speed_bytes", "eth0"),
            Some(-125_000.0)
        );
        assert_eq!(
            sample(&families, "node_network_flags", "eth0"),
            Some(4099.0)
        );
        assert_eq!(sample(&families, "node_network_carrier", "ifb0"), None);
        assert_eq!(
            sample(&families, "node_network_iface_id", "eth0"),
            Some(4.0)
        );
        assert_eq!(
            sample(&families, "node_network_protocol_type", "eth0"),
            Some(1.0)
        );
        assert!(sample(&families, "node_network_up", "bonding_masters").is_none());
        let changes = families
            .iter()
            .find(|f| f.name == "node_network_carrier_changes")
            .unwrap();
        assert_eq!(changes.sample_name(), "node_network_carrier_changes_total");
        assert_eq!(
            changes.help,
            "Network device property: carrier_changes_total"
        );
        let info = families
            .iter()
            .find(|f| f.name == "node_network_info")
            .unwrap();
        let eth0_info: Vec<(&str, &str)> = info.samples[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect();
        assert_eq!(
            eth0_info,
            [
                ("address", "02:fc:00:00:00:01"),
                ("broadcast", "ff:ff:ff:ff:ff:ff"),
                ("device", "eth0"),
                ("duplex", "unknown"),
                ("ifalias", ""),
                ("operstate", "up"),
            ]
        );
    }

    #[test]
    fn missing_class_dir_fails() {
        let root = tempfile::tempdir().unwrap();
        assert!(collect(&HostPaths::under(root.path()), &mut Reader::new()).is_err());
    }
}
