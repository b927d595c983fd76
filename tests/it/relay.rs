//! The relay's promises, end to end against the real binary and the verifying DingTalk
//! mock: a crash loses nothing; an alert storm never provokes a rate-limit answer and
//! represents every alert; an outage is ridden out; a permanent error becomes a visible
//! dead letter without holding up other channels; the same notification twice within the
//! dedupe window is delivered once.

use std::time::{Duration, Instant};

use crate::support::exposition::{Exposition, labels};
use crate::support::mocks::{DingTalkMock, Misbehave, Times};
use crate::support::payloads::{firing, single};
use crate::support::{Lookout, http_get, poll_until};

fn metrics(lookout: &Lookout) -> Exposition {
    let body = http_get(&lookout.url("/metrics"), &[])
        .expect("scrape")
        .text();
    Exposition::parse(&body).expect("valid exposition")
}

fn config(mock: &DingTalkMock, extra_channel: &str, rate: &str, extra: &str) -> String {
    format!(
        "host: {{ enabled: false }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: SECops, rate_limit: '{rate}', retry: {{ initial: 100ms, max: 400ms }} }}
{extra_channel}receivers:
  critical: {{ channels: [ops{}] }}
{extra}",
        mock.webhook_url(),
        if extra_channel.is_empty() { "" } else { ", bad" }
    )
}

#[test]
fn a_crash_mid_delivery_loses_nothing() {
    let mock = DingTalkMock::start("crash-robot", Some("SECops"));
    mock.misbehave(
        Misbehave::Delay(Duration::from_millis(25)),
        Times::UntilReset,
    );
    // This test is about crashes, not budgets: let the robot take everything.
    mock.set_rate_limit(100_000, Duration::from_secs(60), Duration::from_secs(1));
    let state = tempfile::tempdir().unwrap();
    let config = config(&mock, "", "1000/s", "");
    let mut lookout = Lookout::start_with_state(&config, state.path());
    let names: Vec<String> = (0..1000).map(|i| format!("Crash{i:04}")).collect();
    for name in &names {
        assert_eq!(
            lookout.post_alerts("critical", &single(name))["status"],
            "accepted"
        );
    }
    poll_until(
        Duration::from_secs(60),
        "some deliveries before the crash",
        || {
            let n = mock.messages().len();
            if n >= 200 {
                Ok(())
            } else {
                Err(format!("{n}"))
            }
        },
    );
    lookout.kill9();
    let before = mock.messages().len();
    assert!(
        before < 1000,
        "the crash came too late to test anything ({before} delivered)"
    );

    let lookout = Lookout::start_with_state(&config, state.path());
    mock.wait_for_all(&names, Duration::from_secs(120), || lookout.logs());
    let duplicates = mock.messages().len() - names.len();
    // One worker per channel sends one message at a time: at most one was in flight.
    assert!(
        duplicates <= 1,
        "{duplicates} duplicates after a crash with one send in flight"
    );
    eprintln!(
        "crash: {before} delivered before kill -9, all 1000 after restart, {duplicates} duplicate(s)"
    );
}

#[test]
fn an_alert_storm_stays_within_the_budget_and_represents_every_alert() {
    let mock = DingTalkMock::start("storm-robot", Some("SECops"));
    let lookout = Lookout::start(&config(&mock, "", "20/min", ""));
    let started = Instant::now();
    // 5,000 distinct alerts in 500 notifications over ~10 s.
    let mut all = Vec::new();
    for batch in 0..500 {
        let alerts: Vec<(String, String)> = (0..10)
            .map(|j| {
                let i = batch * 10 + j;
                (i.to_string(), format!("{i:08x}{i:08x}"))
            })
            .collect();
        all.extend(alerts.iter().cloned());
        lookout.post_alerts("critical", &firing("StormAlert", &alerts));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let ops = labels(&[("channel", "ops")]);
    poll_until(Duration::from_secs(180), "the storm to drain", || {
        let m = metrics(&lookout);
        match m.value("lookout_outbox_pending", &ops) {
            Some(0.0) => Ok(()),
            other => Err(format!("pending {other:?}")),
        }
    });
    assert_eq!(
        mock.rate_limited_count(),
        0,
        "the robot never had to answer 130101"
    );
    let busiest = mock.max_in_any_window(Duration::from_secs(60));
    assert!(busiest <= 20, "{busiest} messages in one minute");
    // Every alert shows by its id (single messages) or fingerprint (digests), or is
    // counted in a digest's "…另有 N 条告警".
    let marks: Vec<Vec<String>> = all
        .iter()
        .map(|(id, fp)| {
            let fp8 = fp.get(..8).unwrap_or_default();
            vec![format!("- id：{id}\n"), format!("[{fp8}]")]
        })
        .collect();
    let (shown, omitted) = mock.alerts_represented(&marks);
    assert!(
        shown + omitted >= 5000,
        "{shown} shown + {omitted} counted < 5000"
    );
    let digests = metrics(&lookout)
        .value("lookout_digests_total", &ops)
        .unwrap_or(0.0);
    assert!(digests >= 1.0, "the backlog was coalesced");
    eprintln!(
        "storm: {} messages, busiest minute {busiest}, {shown} alerts shown, {omitted} counted, {digests} digests, drained in {:?}",
        mock.messages().len(),
        started.elapsed()
    );
}

#[test]
fn an_outage_is_ridden_out_and_a_bad_signature_becomes_a_dead_letter() {
    let mock = DingTalkMock::start("ops-robot", Some("SECops"));
    mock.add_robot("bad-robot", Some("SECright"));
    let bad = format!(
        "  bad: {{ type: dingtalk, url: '{}', secret: SECwrong }}\n",
        mock.webhook_url_for("bad-robot")
    );
    let lookout = Lookout::start(&config(&mock, &bad, "20/min", ""));
    mock.misbehave(Misbehave::Status(500), 4);
    for name in ["Outage1", "Outage2", "Outage3"] {
        lookout.post_alerts("critical", &single(name));
    }
    poll_until(Duration::from_secs(30), "delivery after the outage", || {
        let texts = mock.texts();
        let done = ["Outage1", "Outage2", "Outage3"]
            .iter()
            .all(|n| texts.iter().any(|t| t.contains(n)));
        if done {
            Ok(())
        } else {
            Err(format!("{texts:?}\n{}", lookout.logs()))
        }
    });
    let bad_labels = labels(&[("channel", "bad")]);
    poll_until(
        Duration::from_secs(30),
        "dead letters for the bad channel",
        || {
            let m = metrics(&lookout);
            match m.value("lookout_dead_letters_total", &bad_labels) {
                Some(n) if n >= 3.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    let m = metrics(&lookout);
    // The mock's four 500s hit whichever channel asked; each became a retry.
    let transient: f64 = ["ops", "bad"]
        .iter()
        .filter_map(|c| {
            m.value(
                "lookout_notifications_total",
                &labels(&[("channel", c), ("outcome", "transient")]),
            )
        })
        .sum();
    assert_eq!(transient, 4.0, "four 500s were retried");
    assert!(
        m.value("lookout_dead_letters_total", &labels(&[("channel", "ops")]))
            .unwrap_or(0.0)
            == 0.0
    );
    poll_until(
        Duration::from_secs(5),
        "the dead-letter gauge",
        || match metrics(&lookout).value("lookout_outbox_dead", &bad_labels) {
            Some(3.0) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let page = http_get(&lookout.url("/"), &[]).unwrap().text();
    assert!(page.contains("Dead letters"), "{page}");
    assert!(
        page.contains("310000"),
        "the dead letter names its error: {page}"
    );
}

#[test]
fn the_same_notification_twice_is_delivered_once_until_the_window_passes() {
    let mock = DingTalkMock::start("dedupe-robot", Some("SECops"));
    let lookout = Lookout::start(&config(
        &mock,
        "",
        "20/min",
        "relay: { dedupe_window: 2s }\n",
    ));
    let body = single("Dedupe");
    assert_eq!(lookout.post_alerts("critical", &body)["status"], "accepted");
    assert_eq!(
        lookout.post_alerts("critical", &body)["status"],
        "duplicate"
    );
    poll_until(Duration::from_secs(10), "the first delivery", || {
        if mock.messages().len() == 1 {
            Ok(())
        } else {
            Err(format!("{}", mock.messages().len()))
        }
    });
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(
        lookout.post_alerts("critical", &body)["status"],
        "accepted",
        "after the window it is new again"
    );
    poll_until(Duration::from_secs(10), "the second delivery", || {
        if mock.messages().len() == 2 {
            Ok(())
        } else {
            Err(format!("{}", mock.messages().len()))
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mock.messages().len(), 2);
}

#[test]
fn sigterm_lets_the_send_in_flight_finish_and_keeps_the_rest_for_later() {
    let mock = DingTalkMock::start("grace-robot", Some("SECops"));
    mock.misbehave(
        Misbehave::Delay(Duration::from_millis(1500)),
        Times::UntilReset,
    );
    let state = tempfile::tempdir().unwrap();
    let config = config(&mock, "", "1000/s", "");
    let mut lookout = Lookout::start_with_state(&config, state.path());
    for name in ["Grace1", "Grace2", "Grace3"] {
        lookout.post_alerts("critical", &single(name));
    }
    // The first send is answered after 1.5 s; the second then arrives and is held.
    poll_until(
        Duration::from_secs(15),
        "a second send in flight",
        || match (mock.arrivals(), mock.texts().len()) {
            (2, 1) => Ok(()),
            other => Err(format!("(arrived, answered) = {other:?}")),
        },
    );
    lookout.signal("TERM");
    let status = lookout.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}\n{}",
        lookout.logs()
    );
    // The send in flight at SIGTERM finished; no new one started.
    assert_eq!(mock.texts().len(), 2, "the send in flight was answered");
    assert_eq!(mock.arrivals(), 2, "no send started after SIGTERM");

    mock.reset_misbehave();
    let lookout = Lookout::start_with_state(&config, state.path());
    poll_until(
        Duration::from_secs(30),
        "the rest delivered after the restart",
        || {
            let texts = mock.texts();
            let all = ["Grace1", "Grace2", "Grace3"]
                .iter()
                .all(|n| texts.iter().any(|t| t.contains(n)));
            if all {
                Ok(())
            } else {
                Err(format!("{texts:?}\n{}", lookout.logs()))
            }
        },
    );
    assert_eq!(mock.texts().len(), 3, "nothing sent twice");
}
