//! A parser for the Prometheus text exposition format (0.0.4, and the sample lines of
//! OpenMetrics) that maps each sample name to its label sets and values, plus `# TYPE`.

use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;
use std::str::Chars;

/// Label name → value.
pub(crate) type Labels = BTreeMap<String, String>;

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exposition {
    /// Sample name (as written on the sample line, e.g. `x_total`) → its samples.
    pub(crate) samples: BTreeMap<String, Vec<(Labels, f64)>>,
    /// Family name → type from `# TYPE` lines.
    pub(crate) types: BTreeMap<String, String>,
}

impl Exposition {
    /// Parses `text`; the error names the offending line.
    pub(crate) fn parse(text: &str) -> Result<Exposition, String> {
        let mut exposition = Exposition::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                if let (Some("TYPE"), Some(name), Some(kind)) =
                    (words.next(), words.next(), words.next())
                {
                    exposition.types.insert(name.to_owned(), kind.to_owned());
                }
                continue;
            }
            let (name, labels, value) = parse_sample(line)
                .map_err(|error| format!("line {}: {error}: {line:?}", index + 1))?;
            exposition
                .samples
                .entry(name)
                .or_default()
                .push((labels, value));
        }
        Ok(exposition)
    }

    /// The samples named `name`; empty when there are none.
    pub(crate) fn get(&self, name: &str) -> &[(Labels, f64)] {
        self.samples
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    pub(crate) fn value(&self, name: &str, labels: &Labels) -> Option<f64> {
        self.get(name)
            .iter()
            .find(|(candidate, _)| candidate == labels)
            .map(|(_, value)| *value)
    }

    /// The only sample of an unlabelled metric.
    pub(crate) fn scalar(&self, name: &str) -> Option<f64> {
        self.value(name, &Labels::new())
    }

    /// Sample names starting with `prefix`.
    pub(crate) fn names_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.samples
            .keys()
            .filter(move |name| name.starts_with(prefix))
            .map(String::as_str)
    }

    /// The distinct label-name sets used by samples of `name`.
    pub(crate) fn label_name_sets(&self, name: &str) -> BTreeSet<Vec<String>> {
        self.get(name)
            .iter()
            .map(|(labels, _)| labels.keys().cloned().collect())
            .collect()
    }

    /// The declared type of the family a sample name belongs to (`x_total` → `x`'s type).
    pub(crate) fn type_of(&self, sample_name: &str) -> Option<&str> {
        if let Some(kind) = self.types.get(sample_name) {
            return Some(kind);
        }
        ["_total", "_count", "_sum", "_bucket", "_created", "_info"]
            .iter()
            .filter_map(|suffix| sample_name.strip_suffix(suffix))
            .find_map(|family| self.types.get(family))
            .map(String::as_str)
    }

    /// Total number of samples.
    pub(crate) fn len(&self) -> usize {
        self.samples.values().map(Vec::len).sum()
    }
}

/// Builds a label set from pairs.
pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
    let mut chars = line.chars().peekable();
    let name = take_while(&mut chars, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == ':'
    });
    if name.is_empty() {
        return Err("missing metric name".to_owned());
    }
    let mut labels = Labels::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        parse_labels(&mut chars, &mut labels)?;
    }
    let rest: String = chars.collect();
    // OpenMetrics exemplars follow " # ".
    let rest = rest.split(" # ").next().unwrap_or_default();
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("missing value")?;
    let value = parse_value(value).ok_or_else(|| format!("bad value {value:?}"))?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<f64>()
            .map_err(|_| format!("bad timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".to_owned());
    }
    Ok((name, labels, value))
}

fn parse_labels(chars: &mut Peekable<Chars<'_>>, labels: &mut Labels) -> Result<(), String> {
    loop {
        take_while(chars, |c| c == ' ' || c == ',');
        if chars.peek() == Some(&'}') {
            chars.next();
            return Ok(());
        }
        let name = take_while(chars, |c| c.is_ascii_alphanumeric() || c == '_');
        if name.is_empty() {
            return Err("bad label name".to_owned());
        }
        take_while(chars, |c| c == ' ');
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("label {name} lacks =\""));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(escaped @ ('\\' | '"')) => value.push(escaped),
                    other => return Err(format!("bad escape \\{other:?} in label {name}")),
                },
                Some(c) => value.push(c),
                None => return Err(format!("unterminated value of label {name}")),
            }
        }
        if labels.insert(name.clone(), value).is_some() {
            return Err(format!("duplicate label {name}"));
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

fn take_while(chars: &mut Peekable<Chars<'_>>, keep: impl Fn(char) -> bool) -> String {
    let mut taken = String::new();
    while let Some(&c) = chars.peek() {
        if !keep(c) {
            break;
        }
        taken.push(c);
        chars.next();
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_values_and_types() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\n\
                    a_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3.5 1700000000\n\
                    b NaN\nc{} +Inf\n# EOF\n";
        let parsed = Exposition::parse(text).unwrap();
        assert_eq!(
            parsed.value("a_total", &labels(&[("x", "1"), ("y", "q\"\\\n")])),
            Some(3.5)
        );
        assert!(parsed.scalar("b").unwrap().is_nan());
        assert_eq!(parsed.scalar("c"), Some(f64::INFINITY));
        assert_eq!(parsed.type_of("a_total"), Some("counter"));
        assert_eq!(parsed.len(), 3);
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "x{a=1} 2",
            "x{a=\"1\" 2",
            "x",
            "x 1 2 3",
            "{a=\"b\"} 1",
            "x{a=\"1\",a=\"2\"} 1",
        ] {
            assert!(Exposition::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
