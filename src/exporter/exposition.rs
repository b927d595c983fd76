//! Exposition formats: content negotiation from `Accept`, and the rewrite of
//! prometheus-client's OpenMetrics output into the Prometheus text format 0.0.4.

/// The two formats a scraper can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
    /// `text/plain; version=0.0.4`
    Text,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// Picks the format the `Accept` header prefers, by q-value; ties go to OpenMetrics
    /// only when it is listed first. No header, `*/*`, or anything unknown → text 0.0.4,
    /// which every Prometheus and every curl understands.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut q = 1.0_f32;
            let mut version = None;
            for param in parts {
                if let Some((key, value)) = param.split_once('=') {
                    let value = value.trim().trim_matches('"');
                    match key.trim().to_ascii_lowercase().as_str() {
                        "q" => q = value.parse().unwrap_or(0.0),
                        "version" => version = Some(value.to_owned()),
                        _ => {}
                    }
                }
            }
            let format = match media.as_str() {
                "application/openmetrics-text"
                    if version
                        .as_deref()
                        .is_none_or(|v| v == "1.0.0" || v == "0.0.1") =>
                {
                    Format::OpenMetrics
                }
                "text/plain" if version.as_deref().is_none_or(|v| v == "0.0.4") => Format::Text,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            if best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, format)| format)
    }
}

/// Rewrites OpenMetrics text (as prometheus-client writes it) into text format 0.0.4:
/// counter families are named after their `_total` samples, `# UNIT` and `# EOF` go,
/// `_created` samples go, and `info` families become `<name>_info` gauges and `unknown` becomes `untyped`.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // The family whose metadata we are in, and whether it is a counter.
    let mut counter_family: Option<String> = None;
    let mut pending_help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            pending_help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => {
                    counter_family = Some(name.to_owned());
                    (format!("{name}_total"), "counter")
                }
                "info" => {
                    counter_family = None;
                    (format!("{name}_info"), "gauge")
                }
                other => {
                    counter_family = None;
                    let kind = match other {
                        "gauge" | "histogram" | "summary" => other,
                        "stateset" => "gauge",
                        _ => "untyped",
                    };
                    (name.to_owned(), kind)
                }
            };
            if let Some(help) = pending_help.take() {
                let text = help.split_once(' ').map_or("", |(_, text)| text);
                out.push_str("# HELP ");
                out.push_str(&name);
                out.push(' ');
                push_help_004(&mut out, text);
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(&name);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" || line.is_empty() {
            continue;
        }
        if let Some(family) = &counter_family {
            let sample_name = line.split(['{', ' ']).next().unwrap_or_default();
            if sample_name.len() == family.len() + "_created".len()
                && sample_name.starts_with(family.as_str())
                && sample_name.ends_with("_created")
            {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Appends OpenMetrics-escaped help text in text 0.0.4's escaping: that format knows only
/// `\\` and `\n` in help (`promtool` refuses `\"`), so `\"` becomes `"`.
fn push_help_004(out: &mut String, help: &str) {
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            // A lone trailing backslash (never written by the encoder): escape it.
            None => out.push_str("\\\\"),
        }
    }
}

/// Encodes standalone families as text 0.0.4 (for `lookout query`).
pub fn families_to_text(families: &[super::family::Family]) -> Result<String, std::fmt::Error> {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(super::family::Families(families.to_vec())));
    let mut openmetrics = String::new();
    prometheus_client::encoding::text::encode(&mut openmetrics, &registry)?;
    Ok(openmetrics_to_text(&openmetrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_prometheus_expects() {
        // Prometheus 2.x default (OpenMetrics first).
        let prom2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom2)), Format::OpenMetrics);
        // Prometheus 2.x with OpenMetrics disabled / 3.x with scrape_protocols: [PrometheusText0.0.4].
        let text_only = "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(text_only)), Format::Text);
        // Prometheus 3.x default: OpenMetrics ranks above text 0.0.4.
        let prom3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(prom3)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("application/json")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=2.0.0")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some(
                "text/plain;version=0.0.4,application/openmetrics-text;q=0.9"
            )),
            Format::Text
        );
    }

    #[test]
    fn help_escapes_become_text_004_escapes() {
        let om = "# HELP x A \\\"q\\\", \\\\\\\"x\\\\ and\\nmore\\n\n# TYPE x gauge\nx 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP x A \"q\", \\\\\"x\\\\ and\\nmore\\n\n# TYPE x gauge\nx 1\n"
        );
    }

    #[test]
    fn rewrites_openmetrics_into_text_004() {
        let om = "# HELP node_cpu_seconds Seconds the CPUs spent in each mode.\n\
                  # TYPE node_cpu_seconds counter\n\
                  node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\n\
                  node_cpu_seconds_created{cpu=\"0\",mode=\"idle\"} 1.0\n\
                  # HELP node_load1 1m load average.\n\
                  # TYPE node_load1 gauge\n\
                  # UNIT node_load1 load\n\
                  node_load1 0.5\n\
                  # HELP lookout_build Build information.\n\
                  # TYPE lookout_build info\n\
                  lookout_build_info{version=\"0.1.0\"} 1\n\
                  # EOF\n";
        let text = openmetrics_to_text(om);
        assert_eq!(
            text,
            "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
             # TYPE node_cpu_seconds_total counter\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\n\
             # HELP node_load1 1m load average.\n\
             # TYPE node_load1 gauge\n\
             node_load1 0.5\n\
             # HELP lookout_build_info Build information.\n\
             # TYPE lookout_build_info gauge\n\
             lookout_build_info{version=\"0.1.0\"} 1\n"
        );
    }
}
