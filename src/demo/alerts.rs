//! The demo's alert source, standing in for Alertmanager so the relay half of the demo
//! moves on its own: every 10 s it compares a few of the demo's own gauges with the
//! thresholds of the kit's business rules (rules/business.yml) that only the simulator's
//! bursts cross; a condition that holds on two checks in a row fires, and one that
//! clears resolves. Each change is posted as
//! an Alertmanager v4 notification to the demo's own webhook (`POST /alertmanager/…`), so
//! it takes the normal path — outbox, rendering, the console channel — and shows on `/`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::shutdown::Shutdown;
use crate::state::AppState;

/// One threshold, as in the kit's rules.
struct Rule {
    alert: &'static str,
    metric: &'static str,
    above: f64,
    severity: &'static str,
    summary: &'static str,
}

const RULES: [Rule; 4] = [
    Rule {
        alert: "TransactionFailureRateHigh",
        metric: "shop_transaction_failure_ratio",
        above: 0.1,
        severity: "critical",
        summary: "交易失败率超过 10%",
    },
    Rule {
        alert: "LargeTransaction",
        metric: "shop_transactions_large_5m",
        above: 0.0,
        severity: "warning",
        summary: "5 分钟内出现超过 10000 USDT 的大额交易",
    },
    Rule {
        alert: "ApiRequestFlood",
        metric: "shop_requests_by_ip_1m",
        above: 1000.0,
        severity: "warning",
        summary: "单个地址每分钟 API 请求超过 1000 次",
    },
    Rule {
        alert: "ProductOutOfStock",
        metric: "shop_products_out_of_stock",
        above: 0.0,
        severity: "warning",
        summary: "有在售商品已售罄",
    },
];

/// Checks between two evaluations.
const EVERY: Duration = Duration::from_secs(10);

/// What the status page says about it.
pub fn description() -> String {
    let rules: Vec<String> = RULES
        .iter()
        .map(|r| format!("{} > {}", r.metric, r.above))
        .collect();
    format!(
        "the demo's built-in alert source stands in for Alertmanager: it posts to this lookout's own webhook when {}",
        rules.join(", ")
    )
}

/// Evaluates the rules until shutdown, posting changes to the webhook at `addr`.
pub async fn run(state: Arc<AppState>, addr: SocketAddr, shutdown: Shutdown) {
    let addr = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    state.set_alert_source(description());
    tracing::info!("demo alert source started (it stands in for Alertmanager)");
    let client = reqwest::Client::new();
    // alert → (checks in a row over the threshold, when it started firing)
    let mut seen: BTreeMap<&'static str, (u32, Option<DateTime<Utc>>)> = BTreeMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = shutdown.wait() => return,
        }
        for rule in &RULES {
            let value = state.exporter().sql().latest(rule.metric);
            let over = value.is_some_and(|v| v > rule.above);
            let entry = seen.entry(rule.alert).or_insert((0, None));
            entry.0 = if over { entry.0 + 1 } else { 0 };
            let change = match (over, entry.1) {
                (true, None) if entry.0 >= 2 => {
                    let started = Utc::now();
                    entry.1 = Some(started);
                    Some((true, started))
                }
                (false, Some(started)) => {
                    entry.1 = None;
                    Some((false, started))
                }
                _ => None,
            };
            if let Some((firing, started)) = change {
                let body = notification(rule, value.unwrap_or_default(), firing, started, addr);
                post(&client, addr, rule, firing, value, body).await;
            }
        }
    }
}

async fn post(
    client: &reqwest::Client,
    addr: SocketAddr,
    rule: &Rule,
    firing: bool,
    value: Option<f64>,
    body: serde_json::Value,
) {
    let url = format!("http://{addr}/alertmanager/{}", rule.severity);
    let status = if firing { "firing" } else { "resolved" };
    match client.post(&url).json(&body).send().await {
        Ok(response) if response.status().is_success() => {
            tracing::info!(alert = rule.alert, status, metric = rule.metric, value = ?value, threshold = rule.above, receiver = rule.severity, "demo alert source (standing in for Alertmanager) posted a notification");
        }
        Ok(response) => {
            tracing::warn!(alert = rule.alert, status = %response.status(), "demo alert source: the webhook refused the notification");
        }
        Err(error) => tracing::warn!(%error, alert = rule.alert, "demo alert source: cannot post"),
    }
}

/// An Alertmanager v4 notification for `rule`.
fn notification(
    rule: &Rule,
    value: f64,
    firing: bool,
    started: DateTime<Utc>,
    addr: SocketAddr,
) -> serde_json::Value {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let status = if firing { "firing" } else { "resolved" };
    let ends = if firing {
        "0001-01-01T00:00:00Z".to_owned()
    } else {
        time(Utc::now())
    };
    let labels = json!({
        "alertname": rule.alert, "severity": rule.severity,
        "job": "lookout-demo", "instance": addr.to_string(),
    });
    json!({
        "version": "4",
        "status": status,
        "receiver": rule.severity,
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", rule.alert),
        "truncatedAlerts": 0,
        "groupLabels": { "alertname": rule.alert },
        "commonLabels": labels,
        "commonAnnotations": { "summary": rule.summary },
        "externalURL": format!("http://{addr}/"),
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {
                "summary": rule.summary,
                "description": format!("{} = {value} (threshold {})", rule.metric, rule.above),
            },
            "startsAt": time(started),
            "endsAt": ends,
            "generatorURL": format!("http://{addr}/metrics"),
            "fingerprint": format!("{:016x}", fingerprint(rule.alert)),
        }],
    })
}

/// A stable fingerprint per alert name (FNV-1a).
fn fingerprint(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
