//! `/proc/loadavg`: node_exporter's `loadavg` collector — `node_load1`, `node_load5`,
//! `node_load15`.

use super::Error;
use crate::exporter::family::Family;

/// The three load gauges from the first three numbers of the file.
pub(crate) fn parse(text: &str) -> Result<Vec<Family>, Error> {
    let mut numbers = text.split_ascii_whitespace();
    let mut next = || -> Result<f64, Error> {
        numbers
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::parse("loadavg", format!("invalid content {text:?}")))
    };
    let (one, five, fifteen) = (next()?, next()?, next()?);
    Ok(families(one, five, fifteen))
}

/// The families for given averages (shared with the sysinfo fallback).
pub(crate) fn families(one: f64, five: f64, fifteen: f64) -> Vec<Family> {
    vec![
        Family::gauge("node_load1", "1m load average.").with(Vec::new(), one),
        Family::gauge("node_load5", "5m load average.").with(Vec::new(), five),
        Family::gauge("node_load15", "15m load average.").with(Vec::new(), fifteen),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_averages() {
        let families = parse("0.05 0.17 0.08 1/145 6934\n").unwrap();
        let got: Vec<(&str, f64)> = families
            .iter()
            .map(|f| (f.name.as_ref(), f.samples[0].value))
            .collect();
        assert_eq!(
            got,
            [
                ("node_load1", 0.05),
                ("node_load5", 0.17),
                ("node_load15", 0.08)
            ]
        );
        assert_eq!(families[2].help, "15m load average.");
    }

    #[test]
    fn short_or_garbage_fails() {
        assert!(parse("0.05 0.17\n").is_err());
        assert!(parse("0.05 x 0.08 1/145 6934\n").is_err());
        assert!(parse("").is_err());
    }
}
