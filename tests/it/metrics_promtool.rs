//! `promtool check metrics` accepts lookout's text 0.0.4 exposition with no findings except
//! the camelCase notes on node_exporter's own meminfo names, which compatibility requires.
//!
//! promtool 2.42 reads stdin, prints one finding per line on stderr, e.g.
//! `node_memory_MemTotal_bytes metric names should be written in 'snake_case' not 'camelCase'`,
//! and exits 0 when clean, 3 when it only has lint findings, 1 when it cannot parse.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{Lookout, http_get, lookout::HOST_ONLY_CONFIG, require_binary};
use regex::Regex;

/// The only findings allowed are those node_exporter's own names draw, which parity
/// requires (SPEC §6.8): its meminfo and netstat field names (`MemTotal`,
/// `Tcp_InSegs`, …) are camelCase by design, and its entropy gauges count bits.
const ALLOWED_FINDING: &str = r#"^(node_(memory|netstat)_[A-Za-z0-9_]+ metric names should be written in 'snake_case' not 'camelCase'|node_entropy_(available|pool_size)_bits use base unit "bytes" instead of "bits")$"#;

#[test]
fn promtool_finds_nothing_but_node_exporters_own_names() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let lookout = Lookout::start(HOST_ONLY_CONFIG);
    assert_promtool_clean(
        &promtool,
        &lookout,
        &[
            "node_cpu_seconds_total{",
            "node_memory_MemTotal_bytes ",
            "lookout_",
        ],
    );
}

#[test]
fn the_demo_with_business_and_relay_metrics_is_clean_too() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let lookout = Lookout::start_with_args(HOST_ONLY_CONFIG, &["demo"]);
    // Fill every relay metric family: one notification through the console channel.
    let payload = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/payloads/firing.json"
    ))
    .expect("payload");
    let response = crate::support::http_request(
        "POST",
        &lookout.url("/alertmanager/critical"),
        &[("Content-Type", "application/json")],
        &payload,
    )
    .expect("post a notification");
    assert_eq!(response.status, 200, "{}", response.text());
    crate::support::poll_until(
        std::time::Duration::from_secs(30),
        "business and delivery metrics",
        || {
            let body = http_get(&lookout.url("/metrics"), &[])
                .map(|r| r.text())
                .unwrap_or_default();
            let ready = [
                "shop_transactions_today{",
                "shop_wallets ",
                "lookout_delivery_latency_seconds_bucket{",
            ]
            .iter()
            .all(|m| body.contains(m));
            if ready { Ok(()) } else { Err(lookout.logs()) }
        },
    );
    assert_promtool_clean(
        &promtool,
        &lookout,
        &[
            "shop_",
            "lookout_query_success{",
            "lookout_notifications_total{",
        ],
    );
}

/// The help of `shop_escapes` as the YAML block below gives it: two lines, a quote and a
/// backslash, and the block's trailing newline.
const MULTILINE_HELP: &str = "Orders with a \"quote\" and a \\ backslash.\nSecond line.\n";
/// The label value the query returns.
const TRICKY_LABEL: &str = "a \"quoted\" \\ back\nslash";

/// A query over an empty SQLite file whose help spans lines and whose label value holds
/// a quote, a backslash and a newline.
fn escapes_config(dir: &std::path::Path) -> String {
    let db = dir.join("empty.db");
    // SQLite reads a zero-byte file as an empty database.
    std::fs::write(&db, b"").expect("create the SQLite file");
    format!(
        r#"host: {{ enabled: false }}
databases:
  lite: {{ url: 'sqlite://{}' }}
queries:
  - name: escapes
    database: lite
    interval: 1s
    sql: "SELECT 'a \"quoted\" \\ back' || char(10) || 'slash' AS kind, 1 AS v"
    metrics:
      - name: shop_escapes
        help: |
          Orders with a "quote" and a \ backslash.
          Second line.
        labels: [kind]
        value: v
"#,
        db.display()
    )
}

#[test]
fn a_multiline_help_and_tricky_label_values_keep_both_formats_parseable() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let lookout = Lookout::start(&escapes_config(dir.path()));
    crate::support::poll_until(
        std::time::Duration::from_secs(20),
        "the query's first run",
        || {
            let body = http_get(&lookout.url("/metrics"), &[])
                .map(|r| r.text())
                .unwrap_or_default();
            if body.contains("shop_escapes{") {
                Ok(())
            } else {
                Err(lookout.logs())
            }
        },
    );
    // Text 0.0.4: promtool parses it strictly (HELP escapes only `\\` and `\n`).
    assert_promtool_clean(
        &promtool,
        &lookout,
        &["shop_escapes{", "lookout_query_success{"],
    );

    // OpenMetrics (what Prometheus asks for first): Prometheus scrapes it whole and
    // unescapes the help and the label value back to what lookout was given.
    let Some(prometheus) = crate::support::Prometheus::scraping(&[("lookout", lookout.addr())])
    else {
        return;
    };
    let (labels, value) = crate::support::poll_until(
        std::time::Duration::from_secs(30),
        "Prometheus to scrape lookout",
        || {
            let up = prometheus.query_vector("up{job=\"lookout\"}");
            let series = prometheus.query_vector("shop_escapes");
            match (up.first(), series.first()) {
                (Some((_, up)), Some(sample)) if *up == 1.0 => Ok(sample.clone()),
                _ => Err(format!(
                    "up {up:?}, series {series:?}\n{}",
                    prometheus.logs()
                )),
            }
        },
    );
    assert_eq!(labels.get("kind").map(String::as_str), Some(TRICKY_LABEL));
    assert_eq!(value, 1.0);
    let metadata = prometheus.api("metadata?metric=shop_escapes");
    assert_eq!(
        metadata["shop_escapes"][0]["help"], MULTILINE_HELP,
        "{metadata}"
    );
}

fn assert_promtool_clean(promtool: &std::path::Path, lookout: &Lookout, expected: &[&str]) {
    let response = http_get(
        &lookout.url("/metrics"),
        &[("Accept", "text/plain;version=0.0.4")],
    )
    .expect("GET /metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = response.text();
    // Not vacuous: the expected metrics are there.
    for expected in expected {
        assert!(
            body.contains(expected),
            "/metrics lacks {expected:?}:\n{body}"
        );
    }

    let (code, output) = promtool_check_metrics(promtool, &body);
    let allowed = Regex::new(ALLOWED_FINDING).expect("valid regex");
    let (camel_case, findings): (Vec<&str>, Vec<&str>) = output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .partition(|line| allowed.is_match(line));
    assert!(
        findings.is_empty(),
        "promtool check metrics reported:\n{}",
        findings.join("\n")
    );
    // Exit 3 means "lint findings" — allowed only when every finding is an allowed note.
    let expected_code = if camel_case.is_empty() { 0 } else { 3 };
    assert_eq!(code, Some(expected_code), "promtool output:\n{output}");
}

#[test]
fn the_allowed_finding_pattern_is_narrow() {
    let allowed = Regex::new(ALLOWED_FINDING).expect("valid regex");
    for line in [
        "node_memory_MemTotal_bytes metric names should be written in 'snake_case' not 'camelCase'",
        "node_memory_HugePages_Total metric names should be written in 'snake_case' not 'camelCase'",
        "node_netstat_Tcp_InSegs metric names should be written in 'snake_case' not 'camelCase'",
        "node_entropy_pool_size_bits use base unit \"bytes\" instead of \"bits\"",
    ] {
        assert!(allowed.is_match(line), "{line}");
    }
    for line in [
        "node_vmstat_pgFault metric names should be written in 'snake_case' not 'camelCase'",
        "node_disk_read_bits use base unit \"bytes\" instead of \"bits\"",
        "node_netstat_Tcp_InSegs no help text",
        "lookout_queryErrors_total metric names should be written in 'snake_case' not 'camelCase'",
        "node_memory_MemTotal_bytes no help text",
        "node_memory_MemTotal counter metrics should have \"_total\" suffix",
    ] {
        assert!(!allowed.is_match(line), "{line}");
    }
}

#[test]
fn promtool_reports_a_bad_exposition() {
    // Guards the harness: promtool really lints what it is fed.
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let (code, output) = promtool_check_metrics(&promtool, "# TYPE requests counter\nrequests 1\n");
    assert_eq!(code, Some(3), "{output}");
    assert!(output.contains("requests"), "{output}");
}

/// Pipes `text` into `promtool check metrics`; returns the exit code and stdout+stderr.
fn promtool_check_metrics(promtool: &std::path::Path, text: &str) -> (Option<i32>, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool runs");
    let mut combined = String::from_utf8_lossy(&output.stdout).into_owned();
    combined.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code(), combined)
}
