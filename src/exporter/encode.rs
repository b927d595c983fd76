//! Writes SQL series tables straight into exposition text, without building
//! prometheus-client families first: one pass over each table, label values read from
//! its string arena, bytes streamed into any [`Write`] (a buffer, or a deflate stream so
//! that the plain text of a large result is never held in memory).
//!
//! The output matches what prometheus-client writes for the same families (the
//! exposition tests compare them): `# HELP`/`# TYPE` per family, `name{k="v",…} value`
//! per sample, label values escaped (`\\`, `\"`, `\n`), numbers in shortest round-trip
//! form. Non-finite values are written `+Inf`, `-Inf` and `NaN` as both formats define.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use super::Format;
use super::family::{Family, Kind, escape_help};
use super::sql::series::{SeriesFamily, SeriesTable};

/// Writes the families of `tables`, grouped by name (sorted), skipping empty ones.
/// When several tables give one name, a label set two of them produce is written once.
pub fn write_tables<W: Write>(
    out: &mut W,
    format: Format,
    tables: &[&SeriesTable],
) -> io::Result<()> {
    let mut by_name: BTreeMap<&str, Vec<(&SeriesTable, &SeriesFamily)>> = BTreeMap::new();
    for table in tables {
        for family in table.families.iter().filter(|f| !f.is_empty()) {
            by_name
                .entry(&family.name)
                .or_default()
                .push((table, family));
        }
    }
    for (name, sources) in by_name {
        let Some(&(_, first)) = sources.first() else {
            continue;
        };
        write_header(out, format, name, first.kind, &first.help)?;
        let mut seen: Option<HashSet<Vec<(&str, &str)>>> = (sources.len() > 1).then(HashSet::new);
        for (table, family) in sources {
            for (ids, value) in family.samples() {
                let labels = || {
                    family
                        .label_names
                        .iter()
                        .map(String::as_str)
                        .zip(ids.iter().map(|&id| table.strings.get(id)))
                        .chain(
                            family
                                .constant
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str())),
                        )
                };
                if let Some(seen) = &mut seen
                    && !seen.insert(labels().collect())
                {
                    continue;
                }
                write_sample(out, name, first.kind, labels(), value)?;
            }
        }
    }
    Ok(())
}

/// Writes `families` as they are (names, label order, sample order), skipping empty ones.
/// The packs' families go this way: [`Kind::LegacyCounter`] has no prometheus-client type.
pub fn write_families<W: Write>(
    out: &mut W,
    format: Format,
    families: &[Family],
) -> io::Result<()> {
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        write_header(out, format, &family.name, family.kind, &family.help)?;
        for sample in &family.samples {
            let labels = sample.labels.iter().map(|(k, v)| (k.as_ref(), v.as_str()));
            write_sample(out, &family.name, family.kind, labels, sample.value)?;
        }
    }
    Ok(())
}

fn write_header<W: Write>(
    out: &mut W,
    format: Format,
    name: &str,
    kind: Kind,
    help: &str,
) -> io::Result<()> {
    let suffix = match (format, kind) {
        (Format::Text, Kind::Counter) => "_total",
        _ => "",
    };
    let kind = match (format, kind) {
        (_, Kind::Counter) | (Format::Text, Kind::LegacyCounter) => "counter",
        (_, Kind::Gauge) => "gauge",
        (Format::OpenMetrics, Kind::Untyped | Kind::LegacyCounter) => "unknown",
        (Format::Text, Kind::Untyped) => "untyped",
    };
    write!(out, "# HELP {name}{suffix} ")?;
    match format {
        Format::OpenMetrics => out.write_all(escape_help(help).as_bytes())?,
        Format::Text => write_escaped(out, help, false)?,
    }
    write!(out, "\n# TYPE {name}{suffix} {kind}\n")
}

fn write_sample<'a, W: Write>(
    out: &mut W,
    name: &str,
    kind: Kind,
    labels: impl Iterator<Item = (&'a str, &'a str)>,
    value: f64,
) -> io::Result<()> {
    out.write_all(name.as_bytes())?;
    if kind == Kind::Counter {
        out.write_all(b"_total")?;
    }
    let mut open = false;
    for (key, value) in labels {
        out.write_all(if open { b"," } else { b"{" })?;
        open = true;
        out.write_all(key.as_bytes())?;
        out.write_all(b"=\"")?;
        write_escaped(out, value, true)?;
        out.write_all(b"\"")?;
    }
    if open {
        out.write_all(b"}")?;
    }
    out.write_all(b" ")?;
    out.write_all(number(value, &mut dtoa::Buffer::new()).as_bytes())?;
    out.write_all(b"\n")
}

/// Escapes `\\` and `\n`, and `"` too when `quote` (label values; text 0.0.4 help keeps it).
fn write_escaped<W: Write>(out: &mut W, s: &str, quote: bool) -> io::Result<()> {
    let mut rest = s.as_bytes();
    while let Some(at) = rest
        .iter()
        .position(|&b| b == b'\\' || b == b'\n' || (quote && b == b'"'))
    {
        let (plain, special) = rest.split_at(at);
        out.write_all(plain)?;
        let Some((&byte, after)) = special.split_first() else {
            break;
        };
        out.write_all(match byte {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\\"",
        })?;
        rest = after;
    }
    out.write_all(rest)
}

/// A sample value as both formats write it.
pub fn number(value: f64, buffer: &mut dtoa::Buffer) -> &str {
    if value.is_nan() {
        "NaN"
    } else if value == f64::INFINITY {
        "+Inf"
    } else if value == f64::NEG_INFINITY {
        "-Inf"
    } else {
        buffer.format_finite(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::exposition::families_to_text;
    use crate::exporter::family::Families;
    use crate::exporter::sql::series::SeriesBuilder;

    fn table() -> SeriesTable {
        let mut tx = SeriesFamily::new(
            "shop_tx".into(),
            "Transactions, \"quoted\"\nand a \\ backslash.".into(),
            Kind::Gauge,
            vec!["type".into(), "status".into()],
        );
        tx.constant = vec![("env".into(), "prod".into())];
        let paid = SeriesFamily::new("shop_paid".into(), "Paid.".into(), Kind::Counter, vec![]);
        let raw = SeriesFamily::new(
            "shop_raw".into(),
            "Raw.".into(),
            Kind::Untyped,
            vec!["k".into()],
        );
        let empty = SeriesFamily::new("shop_empty".into(), "None.".into(), Kind::Gauge, vec![]);
        let mut builder = SeriesBuilder::new(vec![tx, paid, raw, empty]);
        for (values, v) in [
            (["充值 \"快\" \\ 换行\n", "ok"], 3.0),
            (["提现", "ok"], 0.1),
            (["提现", "failed"], 1e21),
        ] {
            builder.push(0, &values, v).unwrap();
        }
        builder.push(1, &[] as &[&str], 7.0).unwrap();
        for (k, v) in [
            ("a", f64::NAN),
            ("b", f64::INFINITY),
            ("c", f64::NEG_INFINITY),
            ("d", -0.5),
        ] {
            builder.push(2, &[k], v).unwrap();
        }
        builder.finish()
    }

    fn written(format: Format, tables: &[&SeriesTable]) -> String {
        let mut out = Vec::new();
        write_tables(&mut out, format, tables).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// What prometheus-client writes for the same families, with its `inf` spelled as
    /// both formats define it.
    fn reference(format: Format, table: &SeriesTable) -> String {
        let mut families = table.to_families();
        families.sort_by(|a, b| a.name.cmp(&b.name));
        match format {
            Format::Text => families_to_text(&families).unwrap(),
            Format::OpenMetrics => {
                let mut registry = prometheus_client::registry::Registry::default();
                registry.register_collector(Box::new(Families(families)));
                let mut om = String::new();
                prometheus_client::encoding::text::encode_registry(&mut om, &registry).unwrap();
                om
            }
        }
        .replace(" -inf\n", " -Inf\n")
        .replace(" inf\n", " +Inf\n")
    }

    #[test]
    fn writes_what_prometheus_client_writes() {
        let table = table();
        for format in [Format::Text, Format::OpenMetrics] {
            assert_eq!(
                written(format, &[&table]),
                reference(format, &table),
                "{format:?}"
            );
        }
        let text = written(Format::Text, &[&table]);
        assert!(text.contains("# HELP shop_paid_total Paid.\n# TYPE shop_paid_total counter\nshop_paid_total 7.0\n"), "{text}");
        assert!(text.contains("# TYPE shop_raw untyped\n"), "{text}");
        assert!(text.contains("shop_raw{k=\"b\"} +Inf\n"), "{text}");
        assert!(!text.contains("shop_empty"), "{text}");
        let om = written(Format::OpenMetrics, &[&table]);
        assert!(
            om.contains("# TYPE shop_paid counter\nshop_paid_total 7.0\n"),
            "{om}"
        );
        assert!(om.contains("# TYPE shop_raw unknown\n"), "{om}");
        assert!(
            om.contains("# HELP shop_tx Transactions, \\\"quoted\\\"\\nand a \\\\ backslash.\n"),
            "{om}"
        );
    }

    #[test]
    fn a_name_from_two_tables_is_one_family_without_repeats() {
        let family = || {
            SeriesFamily::new(
                "shop_users".into(),
                "Users.".into(),
                Kind::Gauge,
                vec!["site".into()],
            )
        };
        let mut first = SeriesBuilder::new(vec![family()]);
        first.push(0, &["cn"], 1.0).unwrap();
        first.push(0, &["hk"], 2.0).unwrap();
        let mut second = SeriesBuilder::new(vec![family()]);
        second.push(0, &["hk"], 20.0).unwrap();
        second.push(0, &["sg"], 3.0).unwrap();
        let (first, second) = (first.finish(), second.finish());
        assert_eq!(
            written(Format::Text, &[&first, &second]),
            "# HELP shop_users Users.\n# TYPE shop_users gauge\n\
             shop_users{site=\"cn\"} 1.0\nshop_users{site=\"hk\"} 2.0\nshop_users{site=\"sg\"} 3.0\n"
        );
    }

    #[test]
    fn families_as_given_and_legacy_counters_keep_their_name() {
        use crate::exporter::family::{Family, labels};
        let families = [
            Family::gauge("pg_up", "Up.").with(Vec::new(), 1.0),
            Family {
                kind: Kind::LegacyCounter,
                ..Family::gauge("pg_stat_database_blks_hit", "Hits.")
            }
            .with(labels([("datid", "5"), ("datname", "postgres")]), 42.0)
            .with(labels([("datid", "0"), ("datname", "")]), f64::NAN),
            Family::counter("pg_stat_bgwriter_buffers_alloc", "Buffers.").with(Vec::new(), 7.0),
            Family::gauge("pg_none", "Nothing."),
        ];
        let write = |format| {
            let mut out = Vec::new();
            write_families(&mut out, format, &families).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            write(Format::Text),
            "# HELP pg_up Up.\n# TYPE pg_up gauge\npg_up 1.0\n\
             # HELP pg_stat_database_blks_hit Hits.\n# TYPE pg_stat_database_blks_hit counter\n\
             pg_stat_database_blks_hit{datid=\"5\",datname=\"postgres\"} 42.0\n\
             pg_stat_database_blks_hit{datid=\"0\",datname=\"\"} NaN\n\
             # HELP pg_stat_bgwriter_buffers_alloc_total Buffers.\n\
             # TYPE pg_stat_bgwriter_buffers_alloc_total counter\npg_stat_bgwriter_buffers_alloc_total 7.0\n"
        );
        let om = write(Format::OpenMetrics);
        assert!(
            om.contains("# TYPE pg_stat_database_blks_hit unknown\npg_stat_database_blks_hit{"),
            "{om}"
        );
        assert!(
            om.contains("# TYPE pg_stat_bgwriter_buffers_alloc counter\npg_stat_bgwriter_buffers_alloc_total 7.0\n"),
            "{om}"
        );
    }
}
