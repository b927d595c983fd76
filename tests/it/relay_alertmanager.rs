//! A real Alertmanager routes alerts to lookout's receivers with `http_config` bearer
//! auth; the verifying DingTalk mock receives correctly signed messages, firing and then
//! resolved. With a wrong token Alertmanager gets 401 and nothing is delivered. With an
//! unusable state directory lookout answers 503, Alertmanager retries, and the alert is
//! delivered once the directory works.

use std::time::Duration;

use crate::support::exposition::{Exposition, labels};
use crate::support::mocks::DingTalkMock;
use crate::support::{Alertmanager, Lookout, http_get, poll_until};
use serde_json::{Value, json};

const TOKEN: &str = "am-bearer-t0ken";

fn lookout_config(
    mock: &DingTalkMock,
    token_file: &std::path::Path,
    state_dir: Option<&std::path::Path>,
) -> String {
    let state = state_dir
        .map(|d| format!("state_dir: '{}'\n", d.display()))
        .unwrap_or_default();
    format!(
        "host: {{ enabled: false }}
{state}web: {{ auth: {{ bearer_token_file: '{}' }} }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: SECrelay, mention: {{ mobiles: ['13800000000'] }} }}
receivers:
  critical: {{ channels: [ops] }}
",
        token_file.display(),
        mock.webhook_url()
    )
}

fn alertmanager_config(lookout: &Lookout, token_file: &std::path::Path) -> String {
    format!(
        "route:
  receiver: critical
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['team=\"wrong\"']
      receiver: wrong
receivers:
  - name: critical
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config: {{ authorization: {{ credentials_file: '{file}' }} }}
  - name: wrong
    webhook_configs:
      - url: {url}
        http_config: {{ authorization: {{ credentials: not-the-token }} }}
",
        url = lookout.url("/alertmanager/critical"),
        file = token_file.display()
    )
}

fn alert(name: &str, team: &str, resolved: bool) -> Value {
    let now = chrono::Utc::now();
    let ends = if resolved {
        now
    } else {
        now + chrono::Duration::hours(1)
    };
    json!([{
        "labels": { "alertname": name, "severity": "critical", "team": team, "instance": "wallet-db:9788" },
        "annotations": { "summary": format!("{name} 测试告警") },
        "startsAt": (now - chrono::Duration::seconds(30)).to_rfc3339(),
        "endsAt": ends.to_rfc3339(),
        "generatorURL": "http://prometheus:9090/graph",
    }])
}

fn webhook_count(lookout: &Lookout, code: &str) -> f64 {
    let body = http_get(&lookout.url("/metrics"), &[])
        .map(|r| r.text())
        .unwrap_or_default();
    Exposition::parse(&body)
        .ok()
        .and_then(|m| {
            m.value(
                "lookout_webhook_requests_total",
                &labels(&[("receiver", "critical"), ("code", code)]),
            )
        })
        .unwrap_or(0.0)
}

#[test]
fn alertmanager_delivers_signed_firing_then_resolved_and_a_wrong_token_gets_401() {
    let mock = DingTalkMock::start("am-robot", Some("SECrelay"));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let lookout = Lookout::start(&lookout_config(&mock, &token_file, None));
    let Some(am) = Alertmanager::start(&alertmanager_config(&lookout, &token_file)) else {
        return;
    };

    am.post_alerts(&alert("RelayE2E", "ops", false));
    am.post_alerts(&alert("WrongTokenAlert", "wrong", false));
    poll_until(
        Duration::from_secs(30),
        "the firing message at the mock",
        || {
            let texts = mock.texts();
            if texts.iter().any(|t| t.contains("【告警】RelayE2E")) {
                Ok(())
            } else {
                Err(format!("{texts:?}\n{}", lookout.logs()))
            }
        },
    );
    let firing = mock
        .messages()
        .into_iter()
        .find(|m| m.to_string().contains("【告警】RelayE2E"))
        .unwrap();
    assert_eq!(firing["at"]["atMobiles"][0], "13800000000");
    assert!(
        mock.requests()
            .iter()
            .filter(|r| r.accepted)
            .all(|r| r.query.contains("sign=")),
        "every accepted request was signed"
    );

    am.post_alerts(&alert("RelayE2E", "ops", true));
    poll_until(
        Duration::from_secs(30),
        "the resolved message at the mock",
        || {
            let texts = mock.texts();
            if texts.iter().any(|t| t.contains("【恢复】RelayE2E")) {
                Ok(())
            } else {
                Err(format!("{texts:?}"))
            }
        },
    );

    // The wrong token: Alertmanager was answered 401 (and keeps retrying); nothing delivered.
    poll_until(Duration::from_secs(30), "a 401 for the wrong token", || {
        let n = webhook_count(&lookout, "401");
        if n >= 1.0 {
            Ok(())
        } else {
            Err(format!("{n}\n{}", am.logs()))
        }
    });
    assert!(
        !mock.texts().iter().any(|t| t.contains("WrongTokenAlert")),
        "an unauthenticated alert was delivered"
    );
    assert!(am.logs().contains("401"), "Alertmanager saw the 401");
}

#[test]
fn an_unusable_state_dir_gets_503_until_it_works_then_alertmanager_delivers() {
    let mock = DingTalkMock::start("am-robot", Some("SECrelay"));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    // A regular file where the state directory's parent should be: mkdir fails.
    let blocker = dir.path().join("state-parent");
    std::fs::write(&blocker, "").unwrap();
    let state = blocker.join("state");
    let lookout = crate::support::lookout::Lookout::start_unready(&lookout_config(
        &mock,
        &token_file,
        Some(&state),
    ));
    let Some(am) = Alertmanager::start(&alertmanager_config(&lookout, &token_file)) else {
        return;
    };
    am.post_alerts(&alert("StateDirAlert", "ops", false));
    poll_until(
        Duration::from_secs(30),
        "Alertmanager to be answered 503",
        || {
            let n = webhook_count(&lookout, "503");
            if n >= 1.0 {
                Ok(())
            } else {
                Err(format!("{n}"))
            }
        },
    );
    assert!(mock.texts().is_empty());
    assert_eq!(
        http_get(&lookout.url("/-/ready"), &[]).unwrap().status,
        503,
        "not ready without an outbox"
    );

    // Make it usable; lookout opens the outbox on its own, Alertmanager's retry lands.
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    poll_until(
        Duration::from_secs(60),
        "delivery after the state dir works",
        || {
            let texts = mock.texts();
            if texts.iter().any(|t| t.contains("StateDirAlert")) {
                Ok(())
            } else {
                Err(format!("{texts:?}\n{}", lookout.logs()))
            }
        },
    );
    assert_eq!(http_get(&lookout.url("/-/ready"), &[]).unwrap().status, 200);
}
