//! The relay's memory under storm shapes, through the real binary: peak RSS (VmHWM) of
//! lookout while it digests 45,070 alerts from 90 notifications, and while it renders one
//! 1 MiB notification of 4,499 alerts for two channels. Before the bound, the first took
//! ~290 MB and the second ~110 MB (release build); `bench/storm.sh` reports the release
//! figures against the 40 MB target. These tests run the debug build, so their bound is
//! looser, but far below what an unbounded digest costs.

use std::time::Duration;

use crate::support::exposition::Exposition;
use crate::support::mocks::DingTalkMock;
use crate::support::{Lookout, http_get, poll_until};
use serde_json::json;

/// Peak RSS allowed for the debug build in these shapes.
const PEAK_RSS_MB: f64 = 80.0;

fn notification(n: usize, alerts: usize, compact: bool) -> String {
    let alerts: Vec<_> = (0..alerts)
        .map(|i| {
            if compact {
                json!({
                    "status": "firing",
                    "labels": { "alertname": "TxFail", "severity": "critical", "shard": format!("{n}-{i}") },
                    "annotations": { "summary": i.to_string() },
                    "startsAt": "2026-12-01T08:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": format!("{i:08x}{n:08x}"),
                })
            } else {
                json!({
                    "status": "firing",
                    "labels": { "alertname": "TransactionFailureRate", "severity": "critical",
                                "instance": format!("wallet-{}.prod:9788", i % 50), "job": "wallet",
                                "tx_type": "withdraw", "shard": format!("{n}-{i}") },
                    "annotations": { "summary": format!("Withdrawals failing on shard {i}"), "description": "x".repeat(10) },
                    "startsAt": "2026-12-01T08:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": format!("http://prometheus:9090/graph?g0.expr=failures%7Bshard%3D%22{i}%22%7D"),
                    "fingerprint": format!("{i:08x}{n:08x}"),
                })
            }
        })
        .collect();
    json!({
        "version": "4", "status": "firing", "receiver": "storm",
        "groupKey": format!("{{}}:{{alertname=\"Storm\", n=\"{n}\"}}"),
        "groupLabels": { "alertname": "TransactionFailureRate" },
        "commonLabels": { "alertname": "TransactionFailureRate", "severity": "critical" },
        "externalURL": "http://alertmanager:9093", "alerts": alerts,
    })
    .to_string()
}

fn start(mock: &DingTalkMock, robots: usize) -> Lookout {
    let channels: String = (0..robots)
        .map(|r| {
            let token = format!("memory-robot-{r}");
            if r > 0 {
                mock.add_robot(&token, None);
            }
            format!(
                "  robot{r}: {{ type: dingtalk, url: '{}', rate_limit: 20/min }}\n",
                mock.webhook_url_for(&token)
            )
        })
        .collect();
    let names: Vec<String> = (0..robots).map(|r| format!("robot{r}")).collect();
    Lookout::start(&format!(
        "host: {{ enabled: false }}
web: {{ max_body_bytes: 2MiB }}
channels:
{channels}receivers:
  storm: {{ channels: [{}] }}
",
        names.join(", ")
    ))
}

fn drained(lookout: &Lookout) {
    poll_until(Duration::from_secs(120), "nothing pending", || {
        let body = http_get(&lookout.url("/metrics"), &[])
            .expect("scrape")
            .text();
        let m = Exposition::parse(&body).expect("valid exposition");
        let samples = m.get("lookout_outbox_pending");
        let pending: f64 = samples.iter().map(|(_, value)| value).sum();
        // Every channel has a gauge from the start (at 0): drained means each also
        // delivered something.
        let delivered = samples.iter().all(|(labels, _)| {
            m.value("lookout_delivery_latency_seconds_count", labels)
                .is_some_and(|n| n >= 1.0)
        });
        if pending == 0.0 && !samples.is_empty() && delivered {
            Ok(())
        } else {
            Err(format!("{pending} pending\n{}", lookout.logs()))
        }
    });
}

fn peak_rss_mb(lookout: &Lookout) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", lookout.pid())).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("VmHWM")
        / 1024.0
}

#[test]
fn a_digest_of_45070_alerts_stays_within_bounded_memory() {
    let mock = DingTalkMock::start("memory-robot-0", None);
    let lookout = start(&mock, 1);
    for n in 0..90 {
        lookout.post_alerts("storm", &notification(n, 500 + usize::from(n < 70), false));
    }
    drained(&lookout);
    let peak = peak_rss_mb(&lookout);
    eprintln!(
        "digest of 45,070 alerts: peak RSS {peak:.1} MB, {} messages",
        mock.messages().len()
    );
    let busiest = mock.max_in_any_window(Duration::from_secs(60));
    assert!(
        busiest <= 20,
        "{busiest} messages in a minute: over the robot's budget"
    );
    assert!(
        peak <= PEAK_RSS_MB,
        "peak RSS {peak:.1} MB > {PEAK_RSS_MB} MB"
    );
}

#[test]
fn a_1_mib_notification_to_two_channels_stays_within_bounded_memory() {
    let mock = DingTalkMock::start("memory-robot-0", None);
    let lookout = start(&mock, 2);
    let body = notification(0, 4_499, true);
    assert!(
        body.len() > 1_000_000,
        "{} bytes: a 1 MiB notification",
        body.len()
    );
    lookout.post_alerts("storm", &body);
    drained(&lookout);
    let peak = peak_rss_mb(&lookout);
    eprintln!(
        "1 MiB notification to two robots: peak RSS {peak:.1} MB, {} messages",
        mock.messages().len()
    );
    assert_eq!(mock.messages().len(), 10, "five parts per robot");
    assert!(
        peak <= PEAK_RSS_MB,
        "peak RSS {peak:.1} MB > {PEAK_RSS_MB} MB"
    );
}
