//! `/proc/meminfo`: node_exporter's `meminfo` collector — every field as a gauge
//! `node_memory_<Field>_bytes` (kB × 1024), or `node_memory_<Field>` when it has no unit.

use super::Error;
use crate::exporter::family::Family;

/// One gauge family per meminfo line, in file order.
pub(crate) fn parse(text: &str) -> Result<Vec<Family>, Error> {
    let mut families = Vec::with_capacity(64);
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let Some(key) = parts.next() else {
            // Some kernels print empty lines.
            continue;
        };
        let (Some(value), unit, None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::parse("meminfo", format!("invalid line {line:?}")));
        };
        let Some(key) = key.strip_suffix(':') else {
            return Err(Error::parse("meminfo", format!("invalid line {line:?}")));
        };
        let mut value: f64 = value
            .parse()
            .map_err(|_| Error::parse("meminfo", format!("invalid value in {line:?}")))?;
        let field = field_name(key);
        if field.is_empty()
            || !field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            // Not representable as a metric name; node_exporter would fail the scrape.
            continue;
        }
        let field = if unit.is_some() {
            // node_exporter presumes kB whatever the unit says.
            value *= 1024.0;
            format!("{field}_bytes")
        } else {
            field
        };
        let help = format!("Memory information field {field}.");
        families.push(Family::gauge(format!("node_memory_{field}"), help).with(Vec::new(), value));
    }
    if families.is_empty() {
        return Err(Error::parse("meminfo", "no fields"));
    }
    Ok(families)
}

/// `Active(anon)` → `Active_anon`, like node_exporter's `\((.*)\)` → `_$1`.
fn field_name(key: &str) -> String {
    match key
        .split_once('(')
        .and_then(|(head, tail)| Some((head, tail.rsplit_once(')')?)))
    {
        Some((head, (inner, after))) => format!("{head}_{inner}{after}"),
        None => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's /proc/meminfo (kernel 6.18).
    const MEMINFO: &str = "\
MemTotal:       24684084 kB
MemFree:        24060900 kB
MemAvailable:   24094048 kB
Buffers:            2556 kB
Cached:           260556 kB
SwapCached:            0 kB
Active:           129532 kB
Inactive:         293184 kB
Active(anon):      28248 kB
Inactive(anon):   200856 kB
Active(file):     101284 kB
Inactive(file):    92328 kB
Unevictable:       12412 kB
Mlocked:           11400 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Zswap:                 0 kB
Zswapped:              0 kB
Dirty:               356 kB
Writeback:             0 kB
AnonPages:        172052 kB
Mapped:           115268 kB
Shmem:             69488 kB
KReclaimable:      95412 kB
Slab:             120812 kB
SReclaimable:      95412 kB
SUnreclaim:        25400 kB
KernelStack:        2388 kB
PageTables:         3576 kB
SecPageTables:         0 kB
NFS_Unstable:          0 kB
Bounce:                0 kB
WritebackTmp:          0 kB
CommitLimit:    12342040 kB
Committed_AS:    1068804 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       15148 kB
VmallocChunk:          0 kB
Percpu:              688 kB
AnonHugePages:         0 kB
ShmemHugePages:        0 kB
ShmemPmdMapped:        0 kB
FileHugePages:         0 kB
FilePmdMapped:         0 kB
Balloon:               0 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
DirectMap4k:       26624 kB
DirectMap2M:     2070528 kB
DirectMap1G:    25165824 kB
";

    fn get<'a>(families: &'a [Family], name: &str) -> Option<&'a Family> {
        families.iter().find(|f| f.name == name)
    }

    #[test]
    fn every_field_like_node_exporter() {
        let families = parse(MEMINFO).unwrap();
        // node_exporter 1.5 printed 54 node_memory_* series for this file.
        assert_eq!(families.len(), 54);
        let total = get(&families, "node_memory_MemTotal_bytes").unwrap();
        assert_eq!(total.samples[0].value, 24_684_084.0 * 1024.0);
        assert_eq!(total.help, "Memory information field MemTotal_bytes.");
        assert!(total.samples[0].labels.is_empty());
        assert_eq!(
            get(&families, "node_memory_Active_anon_bytes")
                .unwrap()
                .help,
            "Memory information field Active_anon_bytes."
        );
        assert!(get(&families, "node_memory_Inactive_file_bytes").is_some());
        assert!(get(&families, "node_memory_Committed_AS_bytes").is_some());
        assert_eq!(
            get(&families, "node_memory_VmallocTotal_bytes")
                .unwrap()
                .samples[0]
                .value,
            34_359_738_367.0 * 1024.0
        );
        let huge = get(&families, "node_memory_HugePages_Total").unwrap();
        assert_eq!(huge.help, "Memory information field HugePages_Total.");
        assert_eq!(huge.samples[0].value, 0.0);
        assert!(
            families
                .iter()
                .all(|f| f.kind == crate::exporter::family::Kind::Gauge)
        );
    }

    #[test]
    fn parenthesised_names() {
        assert_eq!(field_name("Active(anon)"), "Active_anon");
        assert_eq!(field_name("Inactive(file)"), "Inactive_file");
        assert_eq!(field_name("MemTotal"), "MemTotal");
        assert_eq!(field_name("Odd(a)b"), "Odd_ab");
    }

    #[test]
    fn empty_lines_are_skipped_and_garbage_fails() {
        assert_eq!(parse("\nMemFree: 1 kB\n\n").unwrap().len(), 1);
        assert!(parse("MemFree: x kB\n").is_err());
        assert!(parse("MemFree 1 kB\n").is_err());
        assert!(parse("MemFree: 1 kB extra\n").is_err());
        assert!(parse("").is_err());
    }
}
