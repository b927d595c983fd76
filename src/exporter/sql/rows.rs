//! Result rows → the series table of one query: label columns, value columns, constant
//! labels, the series cap and duplicate label sets.
//!
//! Backends stream rows into a [`Sink`], one at a time, and stop reading when the sink
//! says so: the [`Converter`] keeps only the samples it exports, so a run's memory is
//! bounded by `max_series` and not by the size of the result.
//!
//! Nothing here fails a whole query for one bad row: a NULL value skips its sample, an
//! unparsable value is counted and skipped, a duplicate label set keeps the first sample
//! and is counted. The first sample beyond `max_series` is counted as dropped and ends the
//! run: the rest of the result is not read (so `dropped` says "the cap was hit", not how
//! many rows the database had). Only a column that the configuration names but the
//! result lacks fails the query.

use std::ops::ControlFlow;

use super::Error;
use super::series::{Refused, SeriesBuilder, SeriesFamily, SeriesTable};
use super::value::Value;
use crate::config::{MetricKind, Query};
use crate::exporter::family::Kind;

/// Where a backend puts a result: first the column names, then rows until the result
/// ends or the sink breaks.
pub trait Sink: Send {
    /// The result's column names, before any row.
    fn columns(&mut self, names: Vec<String>) -> Result<(), Error>;
    /// One row; `Break` means "read no further".
    fn row(&mut self, row: Vec<Value>) -> ControlFlow<()>;
}

/// A whole result set, as every backend can return it (`lookout query`, tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Sink for ResultSet {
    fn columns(&mut self, names: Vec<String>) -> Result<(), Error> {
        self.columns = names;
        Ok(())
    }

    fn row(&mut self, row: Vec<Value>) -> ControlFlow<()> {
        self.rows.push(row);
        ControlFlow::Continue(())
    }
}

/// The samples of one run, and what was skipped on the way.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Conversion {
    pub table: SeriesTable,
    pub series: usize,
    /// Samples beyond `max_series` (reading stops at the first row that has one).
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
    /// Result rows the backend handed over.
    pub rows_read: u64,
}

/// A configured column missing from the result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column `{column}` (for metric `{metric}`) is not in the result; columns are: {available}")]
pub struct MissingColumn {
    pub column: String,
    pub metric: String,
    pub available: String,
}

/// One configured metric while rows stream in.
#[derive(Debug)]
struct Target {
    metric: String,
    value: String,
    labels: Vec<String>,
    /// Column positions of the value and the labels, once the columns are known.
    at: Option<(usize, Vec<usize>)>,
}

impl Conversion {
    /// The samples in the general metric model (for `lookout query` and tests).
    pub fn families(&self) -> Vec<crate::exporter::family::Family> {
        self.table.to_families()
    }
}

/// Converts rows of one query into its series table as they arrive.
#[derive(Debug)]
pub struct Converter {
    max_series: usize,
    targets: Vec<Target>,
    builder: SeriesBuilder,
    /// One row's label values, reused.
    values: Vec<String>,
    out: Conversion,
}

impl Converter {
    pub fn new(query: &Query) -> Self {
        let mut targets = Vec::new();
        let mut families = Vec::new();
        for spec in &query.metrics {
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
            let mut family = SeriesFamily::new(name, spec.help.clone(), kind, spec.labels.clone());
            family.constant = spec
                .const_labels
                .iter()
                .chain(query.const_labels.iter())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            families.push(family);
            targets.push(Target {
                metric: spec.name.clone(),
                value: spec.value.clone(),
                labels: spec.labels.clone(),
                at: None,
            });
        }
        Self {
            max_series: query.max_series as usize,
            targets,
            builder: SeriesBuilder::new(families),
            values: Vec::new(),
            out: Conversion::default(),
        }
    }

    /// Finds every configured column in `names`.
    pub fn resolve(&mut self, names: &[String]) -> Result<(), MissingColumn> {
        for target in &mut self.targets {
            let find = |column: &str| {
                names
                    .iter()
                    .position(|c| c.eq_ignore_ascii_case(column))
                    .ok_or_else(|| MissingColumn {
                        column: column.to_owned(),
                        metric: target.metric.clone(),
                        available: names.join(", "),
                    })
            };
            let value = find(&target.value)?;
            let labels = target
                .labels
                .iter()
                .map(|label| find(label))
                .collect::<Result<Vec<_>, _>>()?;
            target.at = Some((value, labels));
        }
        Ok(())
    }

    /// Adds one row's samples; `Break` once a sample no longer fits under `max_series`.
    pub fn push(&mut self, row: &[Value]) -> ControlFlow<()> {
        self.out.rows_read += 1;
        let mut full = false;
        for (index, target) in self.targets.iter().enumerate() {
            let Some((value_at, label_at)) = &target.at else {
                continue;
            };
            let cell = row.get(*value_at).unwrap_or(&Value::Null);
            let number = match cell.to_number() {
                Ok(Some(number)) => number,
                Ok(None) => {
                    self.out.nulls += 1;
                    continue;
                }
                Err(error) => {
                    self.out.unparsable += 1;
                    self.out
                        .unparsable_example
                        .get_or_insert_with(|| format!("{}: {error}", target.value));
                    continue;
                }
            };
            self.values.clear();
            self.values.extend(
                label_at
                    .iter()
                    .map(|&at| row.get(at).unwrap_or(&Value::Null).to_label()),
            );
            if self.out.series >= self.max_series {
                if self.builder.contains(index, &self.values) {
                    self.out.duplicates += 1;
                } else {
                    self.out.dropped += 1;
                    full = true;
                }
                continue;
            }
            match self.builder.push(index, &self.values, number.value) {
                Ok(()) => {
                    if number.lossy {
                        self.out.lossy += 1;
                    }
                    self.out.series += 1;
                }
                Err(Refused::Duplicate) => self.out.duplicates += 1,
                Err(Refused::Full) => {
                    self.out.dropped += 1;
                    full = true;
                }
            }
        }
        if full {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// The run's series; fails if the columns never arrived or lacked one.
    pub fn finish(self) -> Result<Conversion, MissingColumn> {
        if let Some(target) = self.targets.iter().find(|t| t.at.is_none()) {
            return Err(MissingColumn {
                column: target.value.clone(),
                metric: target.metric.clone(),
                available: String::new(),
            });
        }
        let mut out = self.out;
        out.table = self.builder.finish();
        Ok(out)
    }
}

impl Sink for Converter {
    fn columns(&mut self, names: Vec<String>) -> Result<(), Error> {
        self.resolve(&names)
            .map_err(|error| Error::Query(error.to_string()))
    }

    fn row(&mut self, row: Vec<Value>) -> ControlFlow<()> {
        self.push(&row)
    }
}

/// Converts a whole `result` for `query` (what a backend streams, from memory).
pub fn convert(query: &Query, result: &ResultSet) -> Result<Conversion, MissingColumn> {
    let mut converter = Converter::new(query);
    converter.resolve(&result.columns)?;
    for row in &result.rows {
        if converter.push(row).is_break() {
            break;
        }
    }
    converter.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use std::borrow::Cow;

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
        let families = c.table.to_families();
        let tx = &families[0];
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
        let amount = &families[1];
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
    fn the_converter_asks_for_no_row_beyond_the_cap() {
        let q = query(
            3,
            vec![
                metric("a", MetricKind::Gauge, &["k"], "n"),
                metric("b", MetricKind::Gauge, &["k"], "n"),
            ],
        );
        let mut converter = Converter::new(&q);
        converter.resolve(&["k".into(), "n".into()]).unwrap();
        let row = |k: &str, n: i64| vec![Value::Text(k.into()), Value::Int(n)];
        assert!(converter.push(&row("x", 1)).is_continue(), "2 series");
        assert!(
            converter.push(&row("x", 2)).is_continue(),
            "duplicates only"
        );
        assert!(
            converter.push(&row("y", 3)).is_break(),
            "b's sample does not fit"
        );
        let c = converter.finish().unwrap();
        assert_eq!(
            (c.series, c.dropped, c.duplicates, c.rows_read),
            (3, 1, 2, 3)
        );
        assert_eq!(c.table.families[0].len(), 2);
        assert_eq!(c.table.families[1].len(), 1);
    }

    #[test]
    fn a_result_without_the_columns_fails_even_with_no_rows() {
        let q = query(10, vec![metric("m", MetricKind::Gauge, &[], "n")]);
        let error = Converter::new(&q).finish().unwrap_err();
        assert_eq!(error.column, "n");
        let mut empty = Converter::new(&q);
        empty.resolve(&["n".into()]).unwrap();
        let c = empty.finish().unwrap();
        assert_eq!((c.series, c.table.families.len()), (0, 1));
    }

    #[test]
    fn a_missing_column_fails_the_query() {
        let q = query(10, vec![metric("m", MetricKind::Gauge, &["region"], "n")]);
        let error = convert(&q, &result()).unwrap_err();
        assert_eq!(error.column, "region");
        assert!(error.to_string().contains("TX_TYPE, status, n, amount"));
    }
}
