//! Escalation and acknowledgement, end to end through the binary and the verifying mocks:
//! each step fires exactly once, in order, after its delay; firing messages carry an ack
//! link; a GET of the link never acknowledges, a POST does and cancels the pending steps;
//! a resolved notification cancels them too; a forged token is 404; timers survive
//! `kill -9` before and after their due time and fire exactly once.

use std::time::{Duration, Instant};

use crate::support::exposition::labels;
use crate::support::mocks::{DingTalkMock, TencentVoiceMock};
use crate::support::{Lookout, http_get, http_request, poll_until};
use serde_json::json;

const EXTERNAL: &str = "https://lookout.example.com";

fn notification(name: &str, status: &str) -> String {
    json!({
        "version": "4", "status": status, "receiver": "critical",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "groupLabels": { "alertname": name },
        "commonLabels": { "alertname": name, "severity": "critical" },
        "externalURL": "http://am:9093",
        "alerts": [{
            "status": status,
            "labels": { "alertname": name, "severity": "critical", "instance": "db-1" },
            "annotations": { "summary": format!("{name} on db-1") },
            "startsAt": "2026-12-02T02:10:05Z",
            "endsAt": if status == "resolved" { "2026-12-02T02:20:05Z" } else { "0001-01-01T00:00:00Z" },
            "fingerprint": format!("{:016x}", name.len()),
        }],
    })
    .to_string()
}

/// The ack token in a message's text.
fn token_in(text: &str) -> Option<String> {
    let prefix = format!("{EXTERNAL}/ack/");
    let (_, rest) = text.split_once(&prefix)?;
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Some(token)
}

fn texts_about(mock: &DingTalkMock, name: &str) -> Vec<String> {
    mock.texts()
        .into_iter()
        .filter(|t| t.contains(name))
        .collect()
}

/// Waits for `name{pairs}` to read `value` (the exposition is cached for a second).
fn expect_metric(lookout: &Lookout, name: &str, pairs: &[(&str, &str)], value: f64) {
    poll_until(Duration::from_secs(5), name, || {
        match lookout.metrics().value(name, &labels(pairs)) {
            Some(v) if v == value => Ok(()),
            other => Err(format!("{other:?}, want {value}")),
        }
    });
}

#[test]
fn steps_fire_once_in_order_a_get_never_acks_and_a_post_does() {
    let chat = DingTalkMock::start("chat", Some("SECchat"));
    chat.add_robot("boss", Some("SECboss"));
    let voice = TencentVoiceMock::start("AKIDoncall", "oncall-voice-key");
    let config = format!(
        "host: {{ enabled: false }}
web: {{ external_url: '{EXTERNAL}/' }}
channels:
  chat: {{ type: dingtalk, url: '{}', secret: SECchat }}
  boss: {{ type: dingtalk, url: '{}', secret: SECboss }}
  oncall-voice: {{ type: tencent_voice, endpoint: 'http://{}', secret_id: AKIDoncall, secret_key: oncall-voice-key, voice_sdk_app_id: '1400000000', template_id: '1', template_params: ['{{{{ alertname }}}}'], phone_numbers: ['+8613800138000'] }}
receivers:
  critical:
    channels: [chat]
    escalate:
      - {{ after: 2s, channels: [oncall-voice] }}
      - {{ after: 5s, channels: [boss] }}
",
        chat.webhook_url(),
        chat.webhook_url_for("boss"),
        voice.endpoint(),
    );
    let lookout = Lookout::start(&config);
    let posted = Instant::now();
    lookout.post_alerts("critical", &notification("DiskFull", "firing"));
    let first = poll_until(Duration::from_secs(10), "the firing message", || {
        texts_about(&chat, "DiskFull")
            .into_iter()
            .next()
            .ok_or_else(|| "none yet".to_owned())
    });
    let token = token_in(&first).unwrap_or_else(|| panic!("no ack link in:\n{first}"));

    // The page, as a chat app's link preview would fetch it, several times.
    for _ in 0..3 {
        let page = http_get(&lookout.url(&format!("/ack/{token}")), &[]).expect("GET");
        assert_eq!(page.status, 200, "{}", page.text());
        let html = page.text();
        assert!(html.contains("DiskFull on db-1"), "{html}");
        assert!(html.contains("<form method=\"post\""), "{html}");
    }
    // Step 1 still fires: the GETs acknowledged nothing.
    let calls = poll_until(Duration::from_secs(15), "the step-1 voice call", || {
        let calls = voice.calls();
        if calls.is_empty() {
            Err("no call yet".to_owned())
        } else {
            Ok(calls)
        }
    });
    let at = posted.elapsed();
    assert!(
        at >= Duration::from_secs(2),
        "step 1 fired {at:?} after the notification, before its 2 s"
    );
    assert_eq!(calls[0].template_params, ["DiskFull"]);
    expect_metric(
        &lookout,
        "lookout_escalations_total",
        &[("receiver", "critical"), ("step", "1")],
        1.0,
    );

    // Forged and unknown tokens: 404, for GET and POST alike.
    let (id, mac) = token.split_once('-').expect("id-mac");
    let mut chars = mac.chars();
    let first = chars.next().expect("a mac");
    let flipped = format!(
        "{id}-{}{}",
        if first == '0' { '1' } else { '0' },
        chars.as_str()
    );
    for bad in [
        flipped,
        format!("{}-{mac}", id.parse::<i64>().unwrap() + 1),
        "nonsense".to_owned(),
    ] {
        let get = http_get(&lookout.url(&format!("/ack/{bad}")), &[]).expect("GET");
        assert_eq!(get.status, 404, "GET {bad}");
        let post = http_request(
            "POST",
            &lookout.url(&format!("/ack/{bad}")),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"by=mallory",
        )
        .expect("POST");
        assert_eq!(post.status, 404, "POST {bad}");
    }

    let acked = http_request(
        "POST",
        &lookout.url(&format!("/ack/{token}")),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "by=%E6%9D%8E%E5%9B%9B".as_bytes(),
    )
    .expect("POST");
    assert_eq!(acked.status, 200, "{}", acked.text());
    assert!(acked.text().contains("李四"), "{}", acked.text());
    expect_metric(
        &lookout,
        "lookout_acks_total",
        &[("receiver", "critical")],
        1.0,
    );
    let status = http_get(&lookout.url("/"), &[])
        .expect("status page")
        .text();
    assert!(
        status.contains("Open incidents") && status.contains("李四"),
        "{status}"
    );

    // Past step 2's due time (5 s): nothing for the boss, still one call.
    while posted.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(texts_about(&chat, "DiskFull").len(), 1, "one chat message");
    assert!(
        chat.messages_to("boss").is_empty(),
        "the boss robot got nothing after the ack"
    );
    assert_eq!(voice.calls().len(), 1, "exactly one call");
    expect_metric(
        &lookout,
        "lookout_escalations_total",
        &[("receiver", "critical"), ("step", "2")],
        0.0,
    );
    expect_metric(&lookout, "lookout_incidents_open", &[], 1.0);

    // Resolving closes the incident; its page says so and a POST changes nothing.
    lookout.post_alerts("critical", &notification("DiskFull", "resolved"));
    expect_metric(&lookout, "lookout_incidents_open", &[], 0.0);
    let page = http_get(&lookout.url(&format!("/ack/{token}")), &[])
        .expect("GET")
        .text();
    assert!(page.contains("resolved"), "{page}");
    let resolved = chat
        .texts()
        .into_iter()
        .find(|t| t.contains("恢复"))
        .expect("a resolved message");
    assert!(
        token_in(&resolved).is_none(),
        "a resolved message asks for no ack:\n{resolved}"
    );
}

/// A DingTalk chat robot and a DingTalk on-call robot; `critical` escalates to the
/// on-call robot after 2 s.
fn two_robots(mock: &DingTalkMock) -> String {
    mock.add_robot("oncall", Some("SEConcall"));
    format!(
        "host: {{ enabled: false }}
web: {{ external_url: '{EXTERNAL}' }}
channels:
  chat: {{ type: dingtalk, url: '{}', secret: SECchat }}
  oncall: {{ type: dingtalk, url: '{}', secret: SEConcall }}
receivers:
  critical: {{ channels: [chat], escalate: [{{ after: 2s, channels: [oncall] }}] }}
",
        mock.webhook_url(),
        mock.webhook_url_for("oncall"),
    )
}

/// Messages to the on-call robot about `name`.
fn oncall_about(mock: &DingTalkMock, name: &str) -> usize {
    mock.messages_to("oncall")
        .iter()
        .filter(|m| m.to_string().contains(name))
        .count()
}

#[test]
fn a_resolved_notification_cancels_the_pending_steps() {
    let mock = DingTalkMock::start("chat", Some("SECchat"));
    let lookout = Lookout::start(&two_robots(&mock));
    let posted = Instant::now();
    lookout.post_alerts("critical", &notification("Flapping", "firing"));
    lookout.post_alerts("critical", &notification("Flapping", "resolved"));
    while posted.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        oncall_about(&mock, "Flapping"),
        0,
        "no escalation after resolution"
    );
    assert_eq!(
        texts_about(&mock, "Flapping").len(),
        2,
        "firing and resolved to chat"
    );
    expect_metric(&lookout, "lookout_incidents_open", &[], 0.0);
}

#[test]
fn timers_survive_kill_9_before_and_after_their_due_time_and_fire_once() {
    let mock = DingTalkMock::start("chat", Some("SECchat"));
    let config = two_robots(&mock);
    let state = tempfile::tempdir().expect("state dir");

    // A: accepted, then lookout dies before the step is due and stays down past it.
    let mut lookout = Lookout::start_with_state(&config, state.path());
    lookout.post_alerts("critical", &notification("AfterDue", "firing"));
    lookout.kill9();
    std::thread::sleep(Duration::from_secs(3));
    // B: accepted on the restarted lookout, which dies again well before B is due.
    let mut lookout = Lookout::start_with_state(&config, state.path());
    lookout.post_alerts("critical", &notification("BeforeDue", "firing"));
    poll_until(
        Duration::from_secs(10),
        "A's step, fired on start",
        || match oncall_about(&mock, "AfterDue") {
            0 => Err("not yet".to_owned()),
            _ => Ok(()),
        },
    );
    lookout.kill9();
    let lookout = Lookout::start_with_state(&config, state.path());
    poll_until(
        Duration::from_secs(10),
        "B's step after the restart",
        || match oncall_about(&mock, "BeforeDue") {
            0 => Err("not yet".to_owned()),
            _ => Ok(()),
        },
    );
    // Another few seconds: nothing fires twice.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        oncall_about(&mock, "AfterDue"),
        1,
        "A escalated exactly once"
    );
    assert_eq!(
        oncall_about(&mock, "BeforeDue"),
        1,
        "B escalated exactly once"
    );
    drop(lookout);
}

#[test]
fn two_unacknowledged_steps_fire_in_order_once_each() {
    let mock = DingTalkMock::start("chat", Some("SECchat"));
    mock.add_robot("boss", Some("SECboss"));
    let mut config = two_robots(&mock);
    config = config.replace(
        "escalate: [{ after: 2s, channels: [oncall] }]",
        "escalate: [{ after: 2s, channels: [oncall] }, { after: 4s, channels: [boss] }]",
    );
    config = config.replace(
        "receivers:",
        &format!(
            "  boss: {{ type: dingtalk, url: '{}', secret: SECboss }}\nreceivers:",
            mock.webhook_url_for("boss")
        ),
    );
    let lookout = Lookout::start(&config);
    let posted = Instant::now();
    lookout.post_alerts("critical", &notification("ReplicaLag", "firing"));
    poll_until(Duration::from_secs(15), "step 2", || {
        match mock.messages_to("boss").len() {
            0 => Err("not yet".to_owned()),
            _ => Ok(()),
        }
    });
    assert!(
        posted.elapsed() >= Duration::from_secs(4),
        "step 2 came {:?} after the notification, before its 4 s",
        posted.elapsed()
    );
    // Order: the on-call message was accepted before the boss's.
    let order: Vec<String> = mock
        .accepted()
        .iter()
        .map(|r| r.path_and_query())
        .filter(|p| !p.contains("access_token=chat"))
        .collect();
    assert!(
        order.len() == 2
            && order[0].contains("access_token=oncall")
            && order[1].contains("access_token=boss"),
        "{order:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(oncall_about(&mock, "ReplicaLag"), 1);
    assert_eq!(mock.messages_to("boss").len(), 1);
    for step in ["1", "2"] {
        expect_metric(
            &lookout,
            "lookout_escalations_total",
            &[("receiver", "critical"), ("step", step)],
            1.0,
        );
    }
}
