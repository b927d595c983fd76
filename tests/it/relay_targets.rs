//! The relay's per-target promises, end to end against the real binary and the verifying
//! mocks: a robot shared by two channels gets one budget; a rate-limit answer pauses only
//! the number that gave it, and the pause survives a restart; a resolved message never
//! overtakes its firing one; a digest whose part fails (or whose process is killed)
//! resumes at its next part without re-sending the parts delivered; a reloaded
//! `rate_limit` applies without a restart.

use std::time::{Duration, Instant};

use crate::support::http_request;
use crate::support::mocks::{AliyunSmsMock, DingTalkMock, Misbehave, Times};
use crate::support::{Lookout, poll_until};
use serde_json::json;

/// A notification of group `group` with `alerts` alerts, each with a long summary so a
/// digest of a few notifications needs several parts.
/// Waits until the mock accepted exactly `n` messages.
fn wait_for_messages(mock: &DingTalkMock, n: usize, what: &str) {
    poll_until(Duration::from_secs(10), what, || {
        match mock.messages().len() {
            count if count == n => Ok(()),
            count => Err(format!("{count} messages")),
        }
    });
}

fn notification(group: &str, status: &str, alerts: usize, summary_len: usize) -> String {
    let alerts: Vec<_> = (0..alerts)
        .map(|i| {
            json!({
                "status": status,
                "labels": { "alertname": group, "severity": "critical", "id": format!("{group}-{i}") },
                "annotations": { "summary": format!("{group} {i} {}", "长".repeat(summary_len)) },
                "startsAt": "2026-11-22T02:10:05Z",
                "endsAt": if status == "firing" { "0001-01-01T00:00:00Z" } else { "2026-11-22T02:20:05Z" },
                "fingerprint": format!("{:08x}{i:08x}", group.len() * 7919 + group.bytes().map(usize::from).sum::<usize>()),
            })
        })
        .collect();
    json!({
        "version": "4", "status": status, "receiver": "critical",
        "groupKey": format!("{{}}:{{alertname=\"{group}\"}}"),
        "groupLabels": { "alertname": group }, "commonLabels": { "alertname": group, "severity": "critical" },
        "externalURL": "http://am:9093", "alerts": alerts,
    })
    .to_string()
}

#[test]
fn channels_sharing_a_robot_share_its_budget() {
    let mock = DingTalkMock::start("shared-robot", Some("SECops"));
    mock.set_rate_limit(5, Duration::from_secs(60), Duration::from_secs(600));
    // Two channels, one robot (different mentions): together they must stay within 5/min.
    let url = mock.webhook_url();
    let lookout = Lookout::start(&format!(
        "host: {{ enabled: false }}
channels:
  ops: {{ type: dingtalk, url: '{url}', secret: SECops, rate_limit: 5/min }}
  ops-mention: {{ type: dingtalk, url: '{url}', secret: SECops, rate_limit: 5/min, mention: {{ mobiles: ['13800000000'] }} }}
receivers:
  critical: {{ channels: [ops, ops-mention] }}
"
    ));
    for i in 0..6 {
        lookout.post_alerts(
            "critical",
            &notification(&format!("Shared{i}"), "firing", 1, 4),
        );
    }
    std::thread::sleep(Duration::from_secs(6));
    let sent = mock.request_count();
    assert_eq!(
        mock.rate_limited_count(),
        0,
        "the robot never had to answer 130101 ({sent} requests)\n{}",
        lookout.logs()
    );
    assert!(
        sent <= 5,
        "{sent} messages to one robot within a minute (budget 5)"
    );
    assert!(sent >= 4, "the budget was used: {sent} messages");
}

#[test]
fn a_rate_limited_number_pauses_alone_and_stays_paused_across_a_restart() {
    let mock = AliyunSmsMock::start("LTAIpause", "pause-secret");
    mock.set_rate_rules(Vec::new());
    let config = format!(
        "host: {{ enabled: false }}
channels:
  oncall: {{ type: aliyun_sms, endpoint: 'http://{}', access_key_id: LTAIpause, access_key_secret: pause-secret, sign_name: 监控告警, template_code: SMS_1, template_params: {{ name: '{{{{ alertname }}}}' }}, phone_numbers: ['13800000001', '13800000002'], rate_limit: 10/min }}
receivers:
  critical: {{ channels: [oncall] }}
relay: {{ rate_limit_pause: 1h }}
",
        mock.endpoint()
    );
    let state = tempfile::tempdir().expect("state dir");
    let mut lookout = Lookout::start_with_state(&config, state.path());
    // The first number's first message is refused with Aliyun's flow-control code.
    mock.misbehave(
        Misbehave::err_code("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
        1,
    );
    lookout.post_alerts("critical", &notification("PauseOne", "firing", 1, 2));
    let to = |number: &str| {
        mock.sent()
            .iter()
            .filter(|s| s.phone_numbers.iter().any(|p| p == number))
            .count()
    };
    poll_until(
        Duration::from_secs(10),
        "the other number to get its SMS",
        || match to("13800000002") {
            1 => Ok(()),
            n => Err(format!("{n} SMS to 13800000002\n{}", lookout.logs())),
        },
    );
    assert_eq!(to("13800000001"), 0, "the refusing number got nothing");
    lookout.kill9();

    let lookout = Lookout::start_with_state(&config, state.path());
    lookout.post_alerts("critical", &notification("PauseTwo", "firing", 1, 2));
    poll_until(
        Duration::from_secs(10),
        "the second notification to reach the unpaused number",
        || match to("13800000002") {
            2 => Ok(()),
            n => Err(format!("{n} SMS to 13800000002\n{}", lookout.logs())),
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        to("13800000001"),
        0,
        "the pause survived the restart: nothing to the paused number\n{}",
        lookout.logs()
    );
}

#[test]
fn a_resolved_message_never_overtakes_its_firing_one() {
    let mock = DingTalkMock::start("order-robot", Some("SECops"));
    let lookout = Lookout::start(&format!(
        "host: {{ enabled: false }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: SECops, retry: {{ initial: 2s, max: 2s }} }}
receivers:
  critical: {{ channels: [ops] }}
",
        mock.webhook_url()
    ));
    // The firing message meets one 500 and backs off for 2 s; the resolved one arrives
    // meanwhile and must wait for it.
    mock.misbehave(Misbehave::Status(500), 1);
    lookout.post_alerts("critical", &notification("Order", "firing", 1, 2));
    poll_until(
        Duration::from_secs(5),
        "the failed attempt",
        || match mock.request_count() {
            0 => Err("no request yet".to_owned()),
            _ => Ok(()),
        },
    );
    lookout.post_alerts("critical", &notification("Order", "resolved", 1, 2));
    poll_until(Duration::from_secs(15), "both messages", || {
        match mock.texts().len() {
            2 => Ok(()),
            n => Err(format!("{n} delivered\n{}", lookout.logs())),
        }
    });
    let texts = mock.texts();
    assert!(
        texts[0].contains("【告警】") && texts[1].contains("【恢复】"),
        "firing first, then resolved: {texts:?}"
    );
}

/// Twelve notifications of 50 alerts with long summaries: more rows than a 10/min budget
/// takes one by one, and a digest of them needs several DingTalk parts.
fn pile_up(lookout: &Lookout) {
    for i in 0..12 {
        lookout.post_alerts(
            "critical",
            &notification(&format!("Digest{i}"), "firing", 50, 60),
        );
    }
}

/// The digest parts the mock accepted, by their "（i/n）" number.
fn digest_parts(mock: &DingTalkMock) -> Vec<String> {
    mock.messages()
        .iter()
        .filter_map(|m| m["markdown"]["title"].as_str().map(str::to_owned))
        .filter(|title| title.contains("告警汇总"))
        .collect()
}

fn digest_config(mock: &DingTalkMock, rate: &str) -> String {
    format!(
        "host: {{ enabled: false }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: SECops, rate_limit: '{rate}', retry: {{ initial: 200ms, max: 200ms }} }}
receivers:
  critical: {{ channels: [ops] }}
",
        mock.webhook_url()
    )
}

fn assert_each_part_once(parts: &[String]) {
    let total = parts.len();
    assert!(total >= 3, "a digest of several parts: {parts:?}");
    for i in 1..=total {
        let tag = format!("（{i}/{total}）");
        let n = parts.iter().filter(|p| p.contains(&tag)).count();
        assert_eq!(n, 1, "part {tag} delivered {n} times: {parts:?}");
    }
}

#[test]
fn a_digest_part_that_fails_does_not_resend_the_parts_delivered() {
    let mock = DingTalkMock::start("digest-robot", Some("SECops"));
    // The budget is spent by the first message, so the rest piles up into a digest
    // once a reload raises the budget.
    let lookout = Lookout::start(&digest_config(&mock, "1/h"));
    pile_up(&lookout);
    wait_for_messages(&mock, 1, "the first message");
    // The digest's second part fails once.
    mock.misbehave(Misbehave::Status(500), Times::After { skip: 1, count: 1 });
    std::fs::write(lookout.config_path(), digest_config(&mock, "10/min")).expect("rewrite");
    lookout.signal("HUP");
    poll_until(
        Duration::from_secs(20),
        "the digest to be delivered",
        || {
            let parts = digest_parts(&mock);
            let total = parts.len();
            match total {
                0..3 => Err(format!("{parts:?}\n{}", lookout.logs())),
                _ if parts
                    .iter()
                    .any(|p| p.contains(&format!("（{total}/{total}）"))) =>
                {
                    Ok(())
                }
                _ => Err(format!("{parts:?}")),
            }
        },
    );
    assert_eq!(
        mock.request_count(),
        mock.messages().len() + 1,
        "one failed attempt"
    );
    assert_each_part_once(&digest_parts(&mock));
}

#[test]
fn a_digest_killed_mid_way_resumes_at_its_next_part() {
    let mock = DingTalkMock::start("digest-kill-robot", Some("SECops"));
    let state = tempfile::tempdir().expect("state dir");
    let mut lookout = Lookout::start_with_state(&digest_config(&mock, "1/h"), state.path());
    pile_up(&lookout);
    wait_for_messages(&mock, 1, "the first message");
    lookout.kill9();
    // On restart the budget allows the digest; its second part hangs, and lookout is
    // killed while it does.
    mock.misbehave(Misbehave::Hang, Times::After { skip: 1, count: 1 });
    let mut lookout = Lookout::start_with_state(&digest_config(&mock, "10/min"), state.path());
    poll_until(
        Duration::from_secs(20),
        "the digest's first part",
        || match digest_parts(&mock).len() {
            1 => Ok(()),
            n => Err(format!("{n} parts\n{}", lookout.logs())),
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock.request_count() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    lookout.kill9();
    mock.reset_misbehave();
    let lookout = Lookout::start_with_state(&digest_config(&mock, "10/min"), state.path());
    poll_until(Duration::from_secs(20), "the rest of the digest", || {
        let parts = digest_parts(&mock);
        let total = parts
            .first()
            .and_then(|p| p.rsplit('/').next())
            .and_then(|n| n.trim_end_matches('）').parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        if parts.len() >= total {
            Ok(())
        } else {
            Err(format!("{parts:?}\n{}", lookout.logs()))
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_each_part_once(&digest_parts(&mock));
}

#[test]
fn a_reloaded_rate_limit_applies_without_a_restart() {
    let mock = DingTalkMock::start("reload-rate-robot", Some("SECops"));
    let config = |rate: &str| {
        format!(
            "host: {{ enabled: false }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: SECops, rate_limit: '{rate}' }}
receivers:
  critical: {{ channels: [ops] }}
",
            mock.webhook_url()
        )
    };
    let lookout = Lookout::start(&config("1/h"));
    lookout.post_alerts("critical", &notification("RateOne", "firing", 1, 2));
    // The second one is posted after the first went out: posted together they
    // would leave as one digest and there would be nothing to hold back.
    wait_for_messages(&mock, 1, "the first message");
    lookout.post_alerts("critical", &notification("RateTwo", "firing", 1, 2));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(mock.messages().len(), 1, "1/h holds the second one back");
    std::fs::write(lookout.config_path(), config("20/min")).expect("rewrite");
    let response = http_request("POST", &lookout.url("/-/reload"), &[], b"").expect("reload");
    assert_eq!(response.status, 200, "{}", response.text());
    poll_until(
        Duration::from_secs(10),
        "the second message under the new rate",
        || match mock.messages().len() {
            2 => Ok(()),
            n => Err(format!("{n} messages\n{}", lookout.logs())),
        },
    );
}

#[test]
fn a_spent_budget_stays_spent_across_a_restart() {
    let mock = DingTalkMock::start("restart-budget-robot", Some("SECops"));
    let config = format!(
        "host: {{ enabled: false }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: SECops, rate_limit: 2/min }}
receivers:
  critical: {{ channels: [ops] }}
",
        mock.webhook_url()
    );
    let state = tempfile::tempdir().expect("state dir");
    let mut lookout = Lookout::start_with_state(&config, state.path());
    for name in ["BudgetOne", "BudgetTwo"] {
        lookout.post_alerts("critical", &notification(name, "firing", 1, 2));
    }
    wait_for_messages(&mock, 2, "the budget's two messages");
    lookout.kill9();
    let lookout = Lookout::start_with_state(&config, state.path());
    lookout.post_alerts("critical", &notification("BudgetThree", "firing", 1, 2));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        mock.messages().len(),
        2,
        "the send log restored the spent budget\n{}",
        lookout.logs()
    );
}
