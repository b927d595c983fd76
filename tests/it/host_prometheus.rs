//! A real Prometheus scrapes lookout's host metrics, once negotiating OpenMetrics and once
//! text 0.0.4, and the community dashboard expressions evaluate over what it stored.
//!
//! Prometheus 2.42 (Debian bookworm) always sends
//! `Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`
//! with `Accept-Encoding: gzip`; `scrape_protocols` arrived only in 2.49 and no 2.42 flag
//! prefers text (`--enable-feature=native-histograms` only puts protobuf first). So both
//! runs scrape through a recording proxy: the OpenMetrics run passes Prometheus' header
//! through, the text run replaces it with the header Prometheus 2.49+ sends for
//! `scrape_protocols: [PrometheusText0.0.4]`. The proxy records the Content-Type lookout
//! answered in each run.

use std::time::Duration;

use crate::support::{Lookout, Prometheus, RecordingProxy, lookout::HOST_ONLY_CONFIG, poll_until};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";
/// What Prometheus 2.49–2.55 sends with `scrape_protocols: [PrometheusText0.0.4]`.
const TEXT_ONLY_ACCEPT: &str = "text/plain;version=0.0.4;q=0.5,*/*;q=0.4";

/// Time for Prometheus to scrape a few times (1 s interval) on a loaded machine.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn prometheus_scrapes_lookout_as_openmetrics() {
    scrape_and_evaluate(None, OPENMETRICS);
}

#[test]
fn prometheus_scrapes_lookout_as_text_004() {
    scrape_and_evaluate(Some(TEXT_ONLY_ACCEPT), TEXT_004);
}

fn scrape_and_evaluate(accept_override: Option<&str>, expected_content_type: &str) {
    let lookout = Lookout::start(HOST_ONLY_CONFIG);
    let proxy = RecordingProxy::start(lookout.addr(), accept_override);
    let Some(prometheus) = Prometheus::scraping(&[("lookout", proxy.addr())]) else {
        return;
    };
    let context = || format!("{}\n{}", lookout.logs(), prometheus.logs());

    // The target is healthy: scraped, up, no error, samples ingested.
    let target = poll_until(SCRAPE_TIMEOUT, "a completed scrape of lookout", || {
        let targets = prometheus.targets("lookout");
        match targets.as_slice() {
            [target] if target["health"] != "unknown" => Ok(target.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(target["lastError"], "", "scrape error; {}", context());
    assert_eq!(target["health"], "up", "{target}");
    let up = prometheus.query_vector("up{job=\"lookout\"}");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].1, 1.0, "up");
    let scraped = prometheus.query_vector("scrape_samples_scraped{job=\"lookout\"}");
    assert!(
        scraped.len() == 1 && scraped[0].1 > 50.0,
        "too few samples scraped: {scraped:?}"
    );

    // The dashboard expressions evaluate (irate needs two scrapes) to sane percentages.
    let seeds = [
        (
            "cpu busy %",
            "100 - (avg by(instance) (irate(node_cpu_seconds_total{mode=\"idle\"}[5m])) * 100)",
        ),
        (
            "memory used %",
            "(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes * 100",
        ),
        (
            "filesystem available %",
            "(node_filesystem_avail_bytes / node_filesystem_size_bytes) * 100",
        ),
    ];
    let instance = proxy.addr().to_string();
    for (what, expr) in seeds {
        let result = poll_until(SCRAPE_TIMEOUT, what, || {
            let result = prometheus.query_vector(expr);
            if result.is_empty() {
                Err(format!("{expr} is empty"))
            } else {
                Ok(result)
            }
        });
        for (labels, value) in &result {
            // Floating-point rounding can push a fully idle CPU a hair below 0.
            assert!(
                (-0.01..=100.01).contains(value),
                "{what} = {value} for {labels:?} is not a percentage"
            );
            assert_eq!(labels.get("instance"), Some(&instance), "{labels:?}");
        }
    }
    let memory_used = prometheus.query_vector(seeds[1].1);
    assert!(
        memory_used[0].1 > 0.0,
        "memory used % is 0: {memory_used:?}"
    );

    // Every scrape negotiated the expected format, compressed as Prometheus asked.
    let exchanges = proxy.exchanges();
    assert!(exchanges.len() >= 2, "{exchanges:?}");
    for exchange in &exchanges {
        assert!(
            exchange.user_agent.starts_with("Prometheus/"),
            "not a Prometheus scrape: {exchange:?}"
        );
        if accept_override.is_none() {
            assert!(
                exchange
                    .client_accept
                    .starts_with("application/openmetrics-text;version=1.0.0"),
                "Prometheus no longer prefers OpenMetrics; revisit this test: {exchange:?}"
            );
        }
        assert_eq!(exchange.status, 200, "{exchange:?}");
        assert_eq!(exchange.content_type, expected_content_type, "{exchange:?}");
        assert!(exchange.accept_encoding.contains("gzip"), "{exchange:?}");
        assert_eq!(exchange.content_encoding, "gzip", "{exchange:?}");
    }
}
