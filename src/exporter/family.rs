//! The metric model shared by every collector: a family of samples, encoded by
//! prometheus-client so that escaping and number formatting live in one well-kept place.
//!
//! prometheus-client escapes label values but writes help text as given, so a help
//! from the config (`queries[].metrics[].help`) is escaped here ([`escape_help`]).

use std::borrow::Cow;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Label name/value pairs of one sample, in exposition order.
pub type Labels = Vec<(Cow<'static, str>, String)>;

/// Whether a family is a monotonic counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic; the family name excludes `_total`, the encoder appends it.
    Counter,
    /// Any value.
    Gauge,
    /// No type given (`untyped` in text 0.0.4, `unknown` in OpenMetrics), as
    /// node_exporter exports `/proc/net/netstat` and `/proc/vmstat` fields.
    Untyped,
    /// A counter named without `_total`, as exporters written before OpenMetrics name
    /// some (postgres_exporter's `pg_stat_database_blks_hit`): the name is kept as it
    /// is, typed `counter` in text 0.0.4 and `unknown` in OpenMetrics (whose counters
    /// must end in `_total`), as client_golang writes them.
    LegacyCounter,
}

/// One sample: a label set and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// A metric family. For counters `name` is given *without* the `_total` suffix.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: Cow<'static, str>,
    pub help: Cow<'static, str>,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty gauge family.
    pub fn gauge(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name, help, Kind::Gauge)
    }

    /// An empty untyped family.
    pub fn untyped(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name, help, Kind::Untyped)
    }

    /// An empty counter family; `name` without `_total`.
    pub fn counter(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name, help, Kind::Counter)
    }

    fn new(
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        kind: Kind,
    ) -> Self {
        Self {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        }
    }

    /// Appends a sample and returns `self` for chaining.
    pub fn with(mut self, labels: Labels, value: f64) -> Self {
        self.push(labels, value);
        self
    }

    /// Appends a sample.
    pub fn push(&mut self, labels: Labels, value: f64) {
        self.samples.push(Sample { labels, value });
    }

    /// The name samples carry in the exposition (`_total` appended for counters).
    pub fn sample_name(&self) -> Cow<'_, str> {
        match self.kind {
            Kind::Counter => Cow::Owned(format!("{}_total", self.name)),
            Kind::Gauge | Kind::Untyped | Kind::LegacyCounter => Cow::Borrowed(&self.name),
        }
    }

    /// Encodes this family through a prometheus-client descriptor encoder.
    pub fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let metric_type = match self.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            // The text 0.0.4 type `counter` is only written by `encode::write_families`.
            Kind::Untyped | Kind::LegacyCounter => MetricType::Unknown,
        };
        let help = escape_help(&self.help);
        let mut metric = encoder.encode_descriptor(&self.name, &help, None, metric_type)?;
        if let [sample] = self.samples.as_slice()
            && sample.labels.is_empty()
        {
            // Without labels: no `{}` after the name.
            return match self.kind {
                Kind::Counter => ConstCounter::new(sample.value).encode(metric),
                Kind::Gauge | Kind::Untyped | Kind::LegacyCounter => {
                    ConstGauge::new(sample.value).encode(metric)
                }
            };
        }
        for sample in &self.samples {
            let labels = sample.labels.as_slice();
            let family = metric.encode_family(&labels)?;
            match self.kind {
                Kind::Counter => ConstCounter::new(sample.value).encode(family)?,
                Kind::Gauge | Kind::Untyped | Kind::LegacyCounter => {
                    ConstGauge::new(sample.value).encode(family)?
                }
            }
        }
        Ok(())
    }
}

/// Escapes help text for OpenMetrics: `\\`, `\n` and `\"` (the same escapes as a label
/// value), so a multi-line help stays on its `# HELP` line. The text 0.0.4 rewrite
/// turns `\"` back into `"`, as that format escapes only backslash and newline.
pub fn escape_help(help: &str) -> Cow<'_, str> {
    if !help.contains(['\\', '\n', '"']) {
        return Cow::Borrowed(help);
    }
    let mut out = String::with_capacity(help.len() + 8);
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Builds a label set from string pairs.
pub fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (Cow::Borrowed(k), v.to_owned()))
        .collect()
}

/// A collector over a fixed list of families (used for snapshots).
#[derive(Debug, Default)]
pub struct Families(pub Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for family in &self.0 {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(families: &[Family]) -> String {
        crate::exporter::exposition::families_to_text(families).unwrap()
    }

    #[test]
    fn label_values_are_escaped_and_chinese_kept() {
        let family = Family::gauge("shop_tx", "Transactions.")
            .with(labels([("type", "充值 \"快\" \\ 换行\n")]), 3.0);
        assert_eq!(
            encode(&[family]),
            "# HELP shop_tx Transactions.\n# TYPE shop_tx gauge\nshop_tx{type=\"充值 \\\"快\\\" \\\\ 换行\\n\"} 3.0\n"
        );
    }

    #[test]
    fn help_is_escaped_in_both_formats() {
        let help = "Two \"quoted\" lines,\na \\ backslash.\n";
        let family = Family::gauge("shop_x", help).with(Vec::new(), 1.0);
        assert_eq!(
            encode(std::slice::from_ref(&family)),
            "# HELP shop_x Two \"quoted\" lines,\\na \\\\ backslash.\\n\n# TYPE shop_x gauge\nshop_x 1.0\n"
        );
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Families(vec![family])));
        let mut openmetrics = String::new();
        prometheus_client::encoding::text::encode(&mut openmetrics, &registry).unwrap();
        assert!(
            openmetrics.starts_with(
                "# HELP shop_x Two \\\"quoted\\\" lines,\\na \\\\ backslash.\\n\n# TYPE shop_x gauge\n"
            ),
            "{openmetrics}"
        );
        assert_eq!(escape_help("plain"), Cow::Borrowed("plain"));
    }

    #[test]
    fn counters_get_total_and_empty_families_vanish() {
        let counter = Family::counter("shop_payments", "Payments.").with(Vec::new(), 7.0);
        let empty = Family::gauge("shop_empty", "Nothing.");
        assert_eq!(
            encode(&[counter, empty]),
            "# HELP shop_payments_total Payments.\n# TYPE shop_payments_total counter\nshop_payments_total 7.0\n"
        );
    }
}
