//! `/proc/net/netstat`, `/proc/net/snmp` and `/proc/net/snmp6`: node_exporter's `netstat`
//! collector — untyped `node_netstat_<Protocol>_<Field>` for the fields its default
//! `--collector.netstat.fields` filter keeps.

use regex::Regex;

use super::read::Reader;
use super::{Error, HostPaths};
use crate::exporter::family::Family;

/// node_exporter 1.5's default `--collector.netstat.fields`.
pub(crate) const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// The three files, each missing one skipped (`snmp6` is absent without IPv6).
pub(crate) fn collect(
    paths: &HostPaths,
    reader: &mut Reader,
    fields: &Regex,
) -> Result<Vec<Family>, Error> {
    let mut families = Vec::with_capacity(48);
    let net = paths.procfs.join("net");
    parse_paired(reader.read(&net.join("netstat"))?, fields, &mut families)?;
    parse_paired(reader.read(&net.join("snmp"))?, fields, &mut families)?;
    if let Ok(text) = reader.read(&net.join("snmp6")) {
        parse_snmp6(text, fields, &mut families)?;
    }
    Ok(families)
}

fn push(families: &mut Vec<Family>, fields: &Regex, protocol: &str, field: &str, value: &str) {
    let key = format!("{protocol}_{field}");
    if !fields.is_match(&key) {
        return;
    }
    let Ok(value) = value.parse::<f64>() else {
        return;
    };
    families.push(
        Family::untyped(
            format!("node_netstat_{key}"),
            format!("Statistic {protocol}{field}."),
        )
        .with(Vec::new(), value),
    );
}

/// `netstat` and `snmp`: a `Proto: names…` line followed by a `Proto: values…` line.
pub(crate) fn parse_paired(
    text: &str,
    fields: &Regex,
    families: &mut Vec<Family>,
) -> Result<(), Error> {
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        if names.trim().is_empty() {
            continue;
        }
        let values = lines
            .next()
            .ok_or_else(|| Error::parse("netstat", format!("no values after {names:?}")))?;
        let (Some((protocol, names)), Some((same, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            return Err(Error::parse("netstat", format!("invalid line {names:?}")));
        };
        if protocol != same {
            return Err(Error::parse(
                "netstat",
                format!("{protocol} names followed by {same} values"),
            ));
        }
        let names = names.split_ascii_whitespace();
        let mut values = values.split_ascii_whitespace();
        for name in names {
            let Some(value) = values.next() else {
                return Err(Error::parse("netstat", format!("{protocol}: fewer values")));
            };
            push(families, fields, protocol, name, value);
        }
    }
    Ok(())
}

/// `snmp6`: `Ip6InReceives 123` — the protocol ends at the first `6`.
pub(crate) fn parse_snmp6(
    text: &str,
    fields: &Regex,
    families: &mut Vec<Family>,
) -> Result<(), Error> {
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(six) = key.find('6') else { continue };
        let (protocol, field) = key.split_at(six + 1);
        push(families, fields, protocol, field, value);
    }
    Ok(())
}

/// `/proc/vmstat`: node_exporter's `vmstat` collector, untyped `node_vmstat_<field>`.
pub(crate) fn vmstat(
    paths: &HostPaths,
    reader: &mut Reader,
    fields: &Regex,
) -> Result<Vec<Family>, Error> {
    parse_vmstat(reader.read(&paths.procfs.join("vmstat"))?, fields)
}

/// node_exporter 1.5's default `--collector.vmstat.fields`.
pub(crate) const DEFAULT_VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

pub(crate) fn parse_vmstat(text: &str, fields: &Regex) -> Result<Vec<Family>, Error> {
    let mut families = Vec::with_capacity(8);
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !fields.is_match(name) {
            continue;
        }
        let value: f64 = value
            .parse()
            .map_err(|_| Error::parse("vmstat", format!("invalid line {line:?}")))?;
        families.push(
            Family::untyped(
                format!("node_vmstat_{name}"),
                format!("/proc/vmstat information field {name}."),
            )
            .with(Vec::new(), value),
        );
    }
    Ok(families)
}

/// `/proc/net/sockstat` and `sockstat6`: node_exporter's `sockstat` collector.
pub(crate) fn sockstat(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let page = page_size();
    let mut families = Vec::with_capacity(24);
    parse_sockstat(
        reader.read(&paths.procfs.join("net/sockstat"))?,
        page,
        &mut families,
    )?;
    if let Ok(text) = reader.read(&paths.procfs.join("net/sockstat6")) {
        parse_sockstat(text, page, &mut families)?;
    }
    Ok(families)
}

fn page_size() -> f64 {
    #[cfg(unix)]
    let size = rustix::param::page_size();
    #[cfg(not(unix))]
    let size = 4096_usize;
    size as f64
}

/// `sockets: used N` → `node_sockstat_sockets_used`; `TCP: inuse N …` →
/// `node_sockstat_TCP_inuse` …, with `mem` (pages) also as `mem_bytes`.
pub(crate) fn parse_sockstat(
    text: &str,
    page_size: f64,
    families: &mut Vec<Family>,
) -> Result<(), Error> {
    for line in text.lines() {
        let Some((protocol, rest)) = line.split_once(':') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        if fields.len() % 2 != 0 {
            return Err(Error::parse("sockstat", format!("odd line {line:?}")));
        }
        for pair in fields.chunks_exact(2) {
            let [key, value] = pair else { continue };
            let value: f64 = value
                .parse()
                .map_err(|_| Error::parse("sockstat", format!("invalid line {line:?}")))?;
            if protocol == "sockets" {
                if *key == "used" {
                    families.push(
                        Family::gauge(
                            "node_sockstat_sockets_used",
                            "Number of IPv4 sockets in use.",
                        )
                        .with(Vec::new(), value),
                    );
                }
                continue;
            }
            families.push(
                Family::gauge(
                    format!("node_sockstat_{protocol}_{key}"),
                    format!("Number of {protocol} sockets in state {key}."),
                )
                .with(Vec::new(), value),
            );
            if *key == "mem" {
                families.push(
                    Family::gauge(
                        format!("node_sockstat_{protocol}_mem_bytes"),
                        format!("Number of {protocol} sockets in state mem_bytes."),
                    )
                    .with(Vec::new(), value * page_size),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(families: &[Family], name: &str) -> Option<f64> {
        families
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.samples[0].value)
    }

    const NETSTAT: &str = "TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPTimeouts PruneCalled\n\
                           TcpExt: 0 1 2 3 4 5\n\
                           IpExt: InNoRoutes InOctets OutOctets\n\
                           IpExt: 0 278240229 42794940\n";
    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives\n\
                        Ip: 2 64 100\n\
                        Tcp: RtoAlgorithm MaxConn ActiveOpens CurrEstab InErrs\n\
                        Tcp: 1 -1 3998 5 0\n\
                        Udp: InDatagrams NoPorts InErrors OutDatagrams\n\
                        Udp: 51 0 0 52\n\
                        UdpLite: InDatagrams InErrors\n\
                        UdpLite: 0 0\n";
    const SNMP6: &str = "Ip6InReceives                   \t1\nIp6InOctets 128\nIcmp6InMsgs 1\nUdpLite6InErrors 0\nIcmp6InType1 5\n";

    #[test]
    fn default_fields_like_node_exporter() {
        let fields = Regex::new(DEFAULT_FIELDS).unwrap();
        let mut families = Vec::new();
        parse_paired(NETSTAT, &fields, &mut families).unwrap();
        parse_paired(SNMP, &fields, &mut families).unwrap();
        parse_snmp6(SNMP6, &fields, &mut families).unwrap();
        let names: Vec<&str> = families.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "node_netstat_TcpExt_SyncookiesSent",
                "node_netstat_TcpExt_SyncookiesRecv",
                "node_netstat_TcpExt_ListenOverflows",
                "node_netstat_TcpExt_ListenDrops",
                "node_netstat_TcpExt_TCPTimeouts",
                "node_netstat_IpExt_InOctets",
                "node_netstat_IpExt_OutOctets",
                "node_netstat_Ip_Forwarding",
                "node_netstat_Tcp_ActiveOpens",
                "node_netstat_Tcp_CurrEstab",
                "node_netstat_Tcp_InErrs",
                "node_netstat_Udp_InDatagrams",
                "node_netstat_Udp_NoPorts",
                "node_netstat_Udp_InErrors",
                "node_netstat_Udp_OutDatagrams",
                "node_netstat_UdpLite_InErrors",
                "node_netstat_Ip6_InOctets",
                "node_netstat_Icmp6_InMsgs",
                "node_netstat_UdpLite6_InErrors",
            ]
        );
        assert_eq!(
            get(&families, "node_netstat_IpExt_InOctets"),
            Some(278_240_229.0)
        );
        assert_eq!(get(&families, "node_netstat_Ip_Forwarding"), Some(2.0));
        assert_eq!(get(&families, "node_netstat_Tcp_CurrEstab"), Some(5.0));
        assert_eq!(get(&families, "node_netstat_Ip6_InOctets"), Some(128.0));
        let family = &families[0];
        assert_eq!(family.help, "Statistic TcpExtSyncookiesSent.");
        assert_eq!(family.kind, crate::exporter::family::Kind::Untyped);
    }

    #[test]
    fn mismatched_lines_fail() {
        let fields = Regex::new(DEFAULT_FIELDS).unwrap();
        let mut families = Vec::new();
        assert!(parse_paired("Tcp: A B\n", &fields, &mut families).is_err());
        assert!(parse_paired("Tcp: A B\nUdp: 1 2\n", &fields, &mut families).is_err());
        assert!(parse_paired("Tcp: A B\nTcp: 1\n", &fields, &mut families).is_err());
    }

    #[test]
    fn vmstat_default_fields() {
        let fields = Regex::new(DEFAULT_VMSTAT_FIELDS).unwrap();
        let text = "nr_free_pages 6015225\npgpgin 4773385\npgpgout 10600020\npswpin 0\npgfault 11779845\npgmajfault 1543\npgfree 1\noom_kill 0\n";
        let families = parse_vmstat(text, &fields).unwrap();
        let names: Vec<&str> = families.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "node_vmstat_pgpgin",
                "node_vmstat_pgpgout",
                "node_vmstat_pswpin",
                "node_vmstat_pgfault",
                "node_vmstat_pgmajfault",
                "node_vmstat_oom_kill",
            ]
        );
        assert_eq!(get(&families, "node_vmstat_pgfault"), Some(11_779_845.0));
        assert_eq!(families[0].help, "/proc/vmstat information field pgpgin.");
        assert!(parse_vmstat("pgfault x\n", &fields).is_err());
    }

    #[test]
    fn sockstat_with_mem_bytes() {
        let text = "sockets: used 34\nTCP: inuse 15 orphan 0 tw 5 alloc 18 mem 128\nUDP: inuse 0 mem 2\nFRAG: inuse 0 memory 0\n";
        let mut families = Vec::new();
        parse_sockstat(text, 4096.0, &mut families).unwrap();
        parse_sockstat("TCP6: inuse 2\n", 4096.0, &mut families).unwrap();
        assert_eq!(get(&families, "node_sockstat_sockets_used"), Some(34.0));
        assert_eq!(get(&families, "node_sockstat_TCP_alloc"), Some(18.0));
        assert_eq!(get(&families, "node_sockstat_TCP_mem"), Some(128.0));
        assert_eq!(
            get(&families, "node_sockstat_TCP_mem_bytes"),
            Some(524_288.0)
        );
        assert_eq!(get(&families, "node_sockstat_UDP_mem_bytes"), Some(8192.0));
        assert_eq!(get(&families, "node_sockstat_FRAG_memory"), Some(0.0));
        assert_eq!(get(&families, "node_sockstat_TCP6_inuse"), Some(2.0));
        assert_eq!(families.len(), 13);
        assert!(parse_sockstat("TCP: inuse\n", 4096.0, &mut families).is_err());
    }
}
