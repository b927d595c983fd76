//! The outbox as the status page and the operator see it, against the real binary: `GET /`
//! under load never slows the webhook; rows of a channel removed by a reload stay visible;
//! retention keeps the outbox within `relay.retention.max_bytes` without touching pending
//! rows or the dedupe window; a transport failure names its cause, never the robot URL.

use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::exposition::{Exposition, labels};
use crate::support::mocks::{DingTalkMock, Misbehave, Times};
use crate::support::{Lookout, free_addr, http_get, http_request, poll_until};
use serde_json::json;

/// A notification named `name` with `alerts` alerts, each with a 200-byte annotation, so
/// its payload is about `alerts` × 300 bytes.
fn notification(name: &str, alerts: usize) -> String {
    notification_with(name, alerts, 200)
}

/// A notification with `alerts` alerts, each with a `description` bytes long annotation.
fn notification_with(name: &str, alerts: usize, description: usize) -> String {
    let alerts: Vec<_> = (0..alerts)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": { "alertname": name, "severity": "critical", "instance": format!("host-{i}:9100") },
                "annotations": { "summary": format!("{name} on host-{i}"), "description": "x".repeat(description) },
                "startsAt": "2026-11-22T02:10:05Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": format!("{:016x}", fastrand::u64(..)),
            })
        })
        .collect();
    json!({
        "version": "4", "status": "firing", "receiver": "critical",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "groupLabels": { "alertname": name }, "commonLabels": { "alertname": name, "severity": "critical" },
        "externalURL": "http://am:9093", "alerts": alerts,
    })
    .to_string()
}

fn post(lookout: &Lookout, receiver: &str, body: &str) -> serde_json::Value {
    let response = http_request(
        "POST",
        &lookout.url(&format!("/alertmanager/{receiver}")),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .expect("post a notification");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn page(lookout: &Lookout) -> String {
    let response = http_get(&lookout.url("/"), &[]).expect("GET /");
    assert_eq!(response.status, 200, "{}", response.text());
    response.text()
}

fn metrics(lookout: &Lookout) -> Exposition {
    let body = http_get(&lookout.url("/metrics"), &[])
        .expect("scrape")
        .text();
    Exposition::parse(&body).expect("valid exposition")
}

/// A DingTalk robot URL on a port nothing listens on.
fn closed_robot(token: &str) -> String {
    format!("http://{}/robot/send?access_token={token}", free_addr())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Posts `count` small distinct notifications one after the other; their accept times.
fn accept_times(lookout: &Lookout, tag: &str, count: usize) -> Vec<Duration> {
    (0..count)
        .map(|i| {
            let body = notification(&format!("Accept{tag}{i}"), 1);
            let started = Instant::now();
            post(lookout, "critical", &body);
            started.elapsed()
        })
        .collect()
}

/// Issue 9 item 7: `GET /` read the outbox on its writer thread and parsed up to 40 stored
/// payloads per request, so six clients reloading the page queued every webhook commit
/// behind them (p50 1 ms → 0.5 s). The page reads on its own connection and shows
/// summaries stored at accept time.
#[test]
fn status_page_load_does_not_slow_webhook_accepts() {
    // Large notifications go to a robot that refuses them for good (dead letters, which
    // the page lists); the measured ones to a robot that is down (they stay pending).
    let refusing = DingTalkMock::start("dead-token", Some("SECdead"));
    refusing.misbehave(
        Misbehave::err_code(310000, "sign not match"),
        Times::UntilReset,
    );
    let config = format!(
        "host: {{ enabled: false }}
channels:
  refusing: {{ type: dingtalk, url: '{}', secret: SECdead, rate_limit: 1000/min }}
  stuck: {{ type: dingtalk, url: '{}', rate_limit: 1000/min, retry: {{ initial: 1h, max: 1h }} }}
receivers:
  bulk: {{ channels: [refusing] }}
  critical: {{ channels: [stuck] }}
",
        refusing.webhook_url(),
        closed_robot("load-token")
    );
    let lookout = Lookout::start(&config);
    // 40 large notifications (~240 KB each), dead letters: the page lists 20 of them.
    for i in 0..40 {
        post(&lookout, "bulk", &notification(&format!("Large{i}"), 800));
    }
    poll_until(Duration::from_secs(60), "40 dead letters", || {
        let dead =
            metrics(&lookout).value("lookout_outbox_dead", &labels(&[("channel", "refusing")]));
        if dead == Some(40.0) {
            Ok(())
        } else {
            Err(format!("{dead:?}"))
        }
    });
    let quiet = median(accept_times(&lookout, "Quiet", 30));

    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(AtomicUsize::new(0));
    let loops: Vec<_> = (0..6)
        .map(|_| {
            let (stop, pages, url) = (Arc::clone(&stop), Arc::clone(&pages), lookout.url("/"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let response = http_get(&url, &[]).expect("GET /");
                    assert_eq!(response.status, 200);
                    pages.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let loaded = median(accept_times(&lookout, "Loaded", 30));
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.join().expect("a page loop");
    }
    let pages = pages.load(Ordering::Relaxed);
    eprintln!("webhook accept p50: {quiet:?} quiet, {loaded:?} with 6 loops on / ({pages} pages)");
    assert!(pages >= 6, "the page loops ran ({pages} pages)");
    assert!(
        loaded < Duration::from_millis(100),
        "accept p50 {loaded:?} while 6 clients load / (quiet: {quiet:?})"
    );
    // The page still shows what the rows are about.
    let text = page(&lookout);
    assert!(text.contains("firing Large39 ×800"), "{text}");
}

/// Issue 9 item 11 (part): rows of a channel removed by a reload stay in the outbox (they
/// go out if the channel comes back) and show on `/` with their counts.
#[test]
fn a_removed_channel_still_shows_its_rows() {
    let channels = |both: bool| {
        format!(
            "host: {{ enabled: false }}
channels:
{}  kept: {{ type: dingtalk, url: '{}', retry: {{ initial: 1h, max: 1h }} }}
receivers:
  critical: {{ channels: [{}kept] }}
",
            if both {
                format!(
                    "  gone: {{ type: dingtalk, url: '{}', retry: {{ initial: 1h, max: 1h }} }}\n",
                    closed_robot("gone-token")
                )
            } else {
                String::new()
            },
            closed_robot("kept-token"),
            if both { "gone, " } else { "" }
        )
    };
    let lookout = Lookout::start(&channels(true));
    post(&lookout, "critical", &notification("Orphaned", 1));
    post(&lookout, "critical", &notification("Orphaned2", 1));
    std::fs::write(lookout.config_path(), channels(false)).expect("rewrite the config");
    let reload = http_request("POST", &lookout.url("/-/reload"), &[], b"").expect("reload");
    assert_eq!(reload.status, 200, "{}", reload.text());
    let text = poll_until(Duration::from_secs(10), "the removed channel on /", || {
        let text = page(&lookout);
        let row = text
            .lines()
            .find(|l| l.contains("<td>gone</td>"))
            .map(str::to_owned);
        match row {
            Some(row) if row.contains("removed from config") && row.contains("<td>2</td>") => {
                Ok(text)
            }
            other => Err(format!("{other:?}")),
        }
    });
    assert!(text.contains("<td>kept</td>"), "{text}");
    assert!(!text.contains("gone-token"), "{text}");
}

/// Issue 9 item 15: delivered payloads were kept 7 days whatever their size, so ~1,000
/// notifications of 1 MiB filled the shipped 1 GiB volume and every webhook got 503.
/// Retention is bounded by size too: the oldest delivered payloads go first, pending rows
/// are never touched, and the dedupe window keeps working.
#[test]
fn the_outbox_stays_within_its_size_bound() {
    let mock = DingTalkMock::start("bound-token", Some("SECbound"));
    mock.misbehave(Misbehave::Status(500), Times::UntilReset);
    let config = format!(
        "host: {{ enabled: false }}
relay:
  retention: {{ max_bytes: 2MiB }}
channels:
  bulk: {{ type: console }}
  flaky: {{ type: dingtalk, url: '{}', secret: SECbound, rate_limit: 1000/min, retry: {{ initial: 200ms, max: 500ms }} }}
receivers:
  bulk: {{ channels: [bulk] }}
  critical: {{ channels: [flaky] }}
",
        mock.webhook_url()
    );
    let lookout = Lookout::start(&config);
    // Three pending notifications (~240 KB each) the robot refuses for now...
    for i in 0..3 {
        post(
            &lookout,
            "critical",
            &notification_with(&format!("Pending{i}"), 4, 60_000),
        );
    }
    // ... and 40 (~9 MiB) that the console channel delivers at once.
    let bulk: Vec<String> = (0..40)
        .map(|i| notification_with(&format!("Bulk{i}"), 4, 60_000))
        .collect();
    for body in &bulk {
        assert_eq!(post(&lookout, "bulk", body)["status"], "accepted");
    }
    let bound = 2.0 * 1024.0 * 1024.0;
    let used = poll_until(
        Duration::from_secs(60),
        "the outbox within its bound",
        || {
            let m = metrics(&lookout);
            let pending = m.value("lookout_outbox_pending", &labels(&[("channel", "bulk")]));
            match m.scalar("lookout_outbox_bytes") {
                Some(used) if used <= bound && pending == Some(0.0) => Ok(used),
                other => Err(format!(
                    "used {other:?}, bulk pending {pending:?}\n{}",
                    lookout.logs()
                )),
            }
        },
    );
    let m = metrics(&lookout);
    assert_eq!(m.scalar("lookout_outbox_max_bytes"), Some(bound));
    assert!(
        m.scalar("lookout_state_dir_avail_bytes")
            .is_some_and(|b| b > 0.0)
            && m.scalar("lookout_state_dir_size_bytes")
                .is_some_and(|b| b > 0.0),
        "free space of the state dir is exported"
    );
    eprintln!("outbox uses {used} bytes after 9 MiB accepted under a 2 MiB bound");
    // The dedupe window still knows a notification whose payload was pruned.
    assert_eq!(post(&lookout, "bulk", &bulk[0])["status"], "duplicate");
    // The pending rows were not touched: once the robot recovers, all three arrive whole.
    assert_eq!(
        m.value("lookout_outbox_pending", &labels(&[("channel", "flaky")])),
        Some(3.0)
    );
    mock.reset_misbehave();
    poll_until(Duration::from_secs(30), "the pending notifications", || {
        let texts: Vec<String> = mock.messages().iter().map(|m| m.to_string()).collect();
        let missing: Vec<_> = (0..3)
            .filter(|i| {
                !texts
                    .iter()
                    .any(|t| t.contains(&format!("Pending{i} on host-0")))
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing {missing:?} in {texts:?}"))
        }
    });
}

fn send_test(config: &str, channel: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lookout.yaml");
    std::fs::write(&path, config).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("--config")
        .arg(&path)
        .args(["send-test", channel])
        .output()
        .expect("run send-test");
    assert!(!output.status.success(), "send-test fails");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Issue 9 item 16: a transport error said only "error sending request". It names its
/// cause now (the chain of sources), and still never the robot URL with its token.
#[test]
fn a_transport_error_names_its_cause_but_not_the_url() {
    let refused = format!(
        "channels:\n  ops: {{ type: dingtalk, url: '{}' }}\n",
        closed_robot("refused-token")
    );
    let out = send_test(&refused, "ops");
    assert!(out.to_lowercase().contains("connection refused"), "{out}");
    assert!(
        !out.contains("refused-token") && !out.contains("/robot/send"),
        "{out}"
    );

    // A server that takes the request and never answers: the channel's timeout.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hung = format!(
        "channels:\n  ops: {{ type: dingtalk, url: 'http://{}/robot/send?access_token=silent-token', timeout: 300ms }}\n",
        silent.local_addr().expect("address")
    );
    let out = send_test(&hung, "ops");
    assert!(out.contains("timed out"), "{out}");
    assert!(!out.contains("silent-token"), "{out}");
    drop(silent);

    // The relay records the cause as the row's last error, shown on `/`.
    let config = format!(
        "host: {{ enabled: false }}
channels:
  ops: {{ type: dingtalk, url: '{}', retry: {{ initial: 1h, max: 1h }} }}
receivers:
  critical: {{ channels: [ops] }}
",
        closed_robot("relay-token")
    );
    let lookout = Lookout::start(&config);
    post(&lookout, "critical", &notification("Refused", 1));
    let text = poll_until(Duration::from_secs(10), "the cause on /", || {
        let text = page(&lookout);
        if text.to_lowercase().contains("connection refused") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    assert!(!text.contains("relay-token"), "{text}");
    assert!(
        !lookout.logs().contains("relay-token"),
        "{}",
        lookout.logs()
    );
    assert!(
        lookout.logs().to_lowercase().contains("connection refused"),
        "{}",
        lookout.logs()
    );
}

/// `relay.retention`: defaults, and bad values named with file, line and key path.
#[test]
fn retention_is_configured_with_positioned_errors() {
    use lookout::config::{Sources, parse_str};
    let config = parse_str("r.yaml", "", &Sources::system()).expect("empty config");
    let retention = &config.relay.retention;
    assert_eq!(
        (retention.delivered, retention.dead, retention.max_bytes),
        (
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(30 * 86_400),
            Some(256 * 1024 * 1024)
        )
    );
    let config = parse_str(
        "r.yaml",
        "relay:\n  retention: { delivered: 2d, dead: 1w, max_bytes: 64MiB }\n",
        &Sources::system(),
    );
    let config = config.map_err(|e| e.to_string());
    let retention = &config.as_ref().expect("valid retention").relay.retention;
    assert_eq!(retention.max_bytes, Some(64 * 1024 * 1024));
    assert_eq!(retention.delivered, Duration::from_secs(2 * 86_400));
    let bad = "relay:
  dedupe_window: 1h
  retention:
    delivered: 10m
    dead: soon
    max_bytes: 12 parsecs
    keep: forever
";
    let error = parse_str("r.yaml", bad, &Sources::system())
        .expect_err("bad retention")
        .to_string();
    for expected in [
        "r.yaml:4:5: relay.retention.delivered: must be at least relay.dedupe_window (1h)",
        "r.yaml:5:5: relay.retention.dead: invalid duration `soon`",
        "r.yaml:6:5: relay.retention.max_bytes: unknown size unit",
        "r.yaml:7:5: relay.retention.keep: unknown key `keep`",
    ] {
        assert!(error.contains(expected), "{expected}\nnot in:\n{error}");
    }
}
