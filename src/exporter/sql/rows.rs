//! Result rows → metric families for one query: label columns, value columns, constant
//! labels, the series cap and duplicate label sets.
//!
//! Nothing here fails a whole query for one bad row: a NULL value skips its sample, an
//! unparsable value is counted and skipped, a duplicate label set keeps the first sample
//! and is counted, samples beyond `max_series` are dropped and counted. Only a column
//! that the configuration names but the result lacks fails the query.

use std::borrow::Cow;
use std::collections::HashSet;

use super::value::Value;
use crate::config::{MetricKind, Query};
use crate::exporter::family::{Family, Kind, Labels};

/// A result set as every backend returns it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// The families of one run, and what was skipped on the way.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Conversion {
    pub families: Vec<Family>,
    pub series: usize,
    /// Samples beyond `max_series`.
    pub dropped: u64,
    /// Samples whose label set repeated an earlier one.
    pub duplicates: u64,
    /// Samples whose value was NULL.
    pub nulls: u64,
    /// Samples whose value was not a number (with one example message).
    pub unparsable: u64,
    pub unparsable_example: Option<String>,
    /// Samples whose value lost precision (unsigned beyond 2^53, long DECIMALs).
    pub lossy: u64,
}

/// A configured column missing from the result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column `{column}` (for metric `{metric}`) is not in the result; columns are: {available}")]
pub struct MissingColumn {
    pub column: String,
    pub metric: String,
    pub available: String,
}

/// Converts `result` for `query`.
pub fn convert(query: &Query, result: &ResultSet) -> Result<Conversion, MissingColumn> {
    let find = |column: &str, metric: &str| {
        result
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
            .ok_or_else(|| MissingColumn {
                column: column.to_owned(),
                metric: metric.to_owned(),
                available: result.columns.join(", "),
            })
    };
    let mut out = Conversion::default();
    for spec in &query.metrics {
        let value_at = find(&spec.value, &spec.name)?;
        let label_at = spec
            .labels
            .iter()
            .map(|label| find(label, &spec.name))
            .collect::<Result<Vec<_>, _>>()?;
        let constant: Labels = spec
            .const_labels
            .iter()
            .chain(query.const_labels.iter())
            .map(|(k, v)| (Cow::Owned(k.clone()), v.clone()))
            .collect();
        let (name, kind) = match spec.kind {
            MetricKind::Gauge => (spec.name.clone(), Kind::Gauge),
            MetricKind::Counter => (
                spec.name
                    .strip_suffix("_total")
                    .unwrap_or(&spec.name)
                    .to_owned(),
                Kind::Counter,
            ),
        };
        let mut family = Family {
            name: Cow::Owned(name),
            help: Cow::Owned(spec.help.clone()),
            kind,
            samples: Vec::new(),
        };
        let mut seen: HashSet<Vec<String>> = HashSet::new();
        for row in &result.rows {
            let cell = row.get(value_at).unwrap_or(&Value::Null);
            let number = match cell.to_number() {
                Ok(Some(number)) => number,
                Ok(None) => {
                    out.nulls += 1;
                    continue;
                }
                Err(error) => {
                    out.unparsable += 1;
                    out.unparsable_example
                        .get_or_insert_with(|| format!("{}: {error}", spec.value));
                    continue;
                }
            };
            let values: Vec<String> = label_at
                .iter()
                .map(|&at| row.get(at).unwrap_or(&Value::Null).to_label())
                .collect();
            if !seen.insert(values.clone()) {
                out.duplicates += 1;
                continue;
            }
            if out.series >= query.max_series as usize {
                out.dropped += 1;
                continue;
            }
            if number.lossy {
                out.lossy += 1;
            }
            let mut labels: Labels = spec
                .labels
                .iter()
                .zip(values)
                .map(|(k, v)| (Cow::Owned(k.clone()), v))
                .collect();
            labels.extend(constant.iter().cloned());
            family.push(labels, number.value);
            out.series += 1;
        }
        out.families.push(family);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::config::MetricSpec;

    fn query(max_series: u32, metrics: Vec<MetricSpec>) -> Query {
        Query {
            name: "q".into(),
            database: "db".into(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            stale_after: Duration::from_secs(180),
            max_series,
            const_labels: BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
            sql: String::new(),
            metrics,
        }
    }

    fn metric(name: &str, kind: MetricKind, labels: &[&str], value: &str) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            help: "h".into(),
            kind,
            labels: labels.iter().map(|s| (*s).to_owned()).collect(),
            value: value.into(),
            const_labels: BTreeMap::new(),
        }
    }

    fn result() -> ResultSet {
        ResultSet {
            columns: vec![
                "TX_TYPE".into(),
                "status".into(),
                "n".into(),
                "amount".into(),
            ],
            rows: vec![
                vec![
                    Value::Text("充值".into()),
                    Value::Text("ok".into()),
                    Value::Int(3),
                    Value::Decimal("10.50".into()),
                ],
                vec![
                    Value::Text("提现".into()),
                    Value::Text("failed".into()),
                    Value::Int(1),
                    Value::Null,
                ],
                vec![
                    Value::Text("充值".into()),
                    Value::Text("ok".into()),
                    Value::Int(9),
                    Value::Decimal("1".into()),
                ],
                vec![
                    Value::Text("转账".into()),
                    Value::Text("ok".into()),
                    Value::Text("n/a".into()),
                    Value::Decimal("2".into()),
                ],
            ],
        }
    }

    #[test]
    fn rows_become_samples_with_labels_and_constants() {
        let q = query(
            100,
            vec![
                metric("shop_tx", MetricKind::Gauge, &["tx_type", "status"], "n"),
                metric(
                    "shop_tx_amount_total",
                    MetricKind::Counter,
                    &["tx_type"],
                    "amount",
                ),
            ],
        );
        let c = convert(&q, &result()).unwrap();
        let tx = &c.families[0];
        assert_eq!(
            tx.samples.len(),
            2,
            "duplicate (充值, ok) dropped, n/a unparsable"
        );
        assert_eq!(tx.samples[0].value, 3.0);
        assert_eq!(
            tx.samples[0].labels,
            vec![
                (Cow::from("tx_type"), "充值".to_owned()),
                (Cow::from("status"), "ok".to_owned()),
                (Cow::from("env"), "prod".to_owned()),
            ]
        );
        let amount = &c.families[1];
        assert_eq!(amount.name, "shop_tx_amount");
        assert_eq!(amount.kind, Kind::Counter);
        assert_eq!(
            amount.samples.len(),
            2,
            "NULL skipped, duplicate 充值 dropped"
        );
        assert_eq!(c.duplicates, 2);
        assert_eq!(c.nulls, 1);
        assert_eq!(c.unparsable, 1);
        assert!(
            c.unparsable_example
                .unwrap()
                .contains("`n/a` is not a number")
        );
    }

    #[test]
    fn the_series_cap_drops_and_counts() {
        let q = query(
            1,
            vec![metric("m", MetricKind::Gauge, &["tx_type", "status"], "n")],
        );
        let c = convert(&q, &result()).unwrap();
        assert_eq!((c.series, c.dropped), (1, 1));
    }

    #[test]
    fn a_missing_column_fails_the_query() {
        let q = query(10, vec![metric("m", MetricKind::Gauge, &["region"], "n")]);
        let error = convert(&q, &result()).unwrap_err();
        assert_eq!(error.column, "region");
        assert!(error.to_string().contains("TX_TYPE, status, n, amount"));
    }
}
