//! Channels end to end through lookout's real pipeline — render, build, sign, send,
//! classify — beyond the conformance table (`tests/mocks_conformance.rs`): mentions that
//! really ping, `send-test`, and secrets kept out of `Debug` output.

mod support;

use std::sync::Arc;

use lookout::alert::Notification;
use lookout::alert::view;
use lookout::channel::Options;
use lookout::config::{Config, Sources, parse_str};
use lookout::notify::Outcome;
use lookout::notify::send::Channels;
use support::mocks::{DingTalkMock, Misbehave};

const SECRETS: &[&str] = &[
    "SECtable-secret",
    "table-token",
    "table-wecom-key",
    "aliyun-table-secret",
    "tencent-table-key",
];

fn payload(alerts: usize, summary: &str) -> Notification {
    let alerts: Vec<String> = (0..alerts)
        .map(|i| {
            format!(
                r#"{{"status":"firing","labels":{{"alertname":"TableAlert","severity":"critical","instance":"host-{i}:9100"}},"annotations":{{"summary":{}}},"startsAt":"2026-11-22T02:10:05Z","fingerprint":"{i:016x}"}}"#,
                serde_json::to_string(summary).expect("summary")
            )
        })
        .collect();
    let json = format!(
        r#"{{"status":"firing","receiver":"r","groupKey":"g","alerts":[{}]}}"#,
        alerts.join(",")
    );
    Notification::parse(json.as_bytes()).expect("notification")
}

/// Prepares and sends `n` through channel `c` of `config`; returns each message's outcome.
fn send(config: Config, n: &Notification) -> Vec<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let timezone = config.timezone;
        let channels = Channels::new(Arc::new(config)).expect("channels open");
        let channel = channels.channel("c").expect("channel c");
        let view = view::build(n, timezone, chrono::Utc::now());
        let messages = channel
            .prepare(&channels.templates, &view, &Options::default())
            .expect("messages built");
        assert!(!messages.is_empty());
        let mut outcomes = Vec::new();
        for m in &messages {
            outcomes.push(channels.send(m).await);
        }
        outcomes
    })
}

#[test]
fn dingtalk_mentions_really_ping() {
    let mock = DingTalkMock::start("ping-token", None);
    let yaml = format!(
        "channels:\n  c: {{ type: dingtalk, url: '{}', mention: {{ mobiles: ['13800000000'] }} }}\nreceivers:\n  r: {{ channels: [c] }}\n",
        mock.webhook_url()
    );
    let config = parse_str("t.yaml", &yaml, &Sources::system()).expect("config");
    assert_eq!(send(config, &payload(1, "x")), vec![Outcome::Delivered]);
    assert_eq!(
        mock.pings().last().cloned().unwrap_or_default(),
        vec!["13800000000".to_owned()]
    );
}

#[test]
fn no_secret_shows_in_debug_output_of_any_kind() {
    let yaml = "\
channels:
  ding: { type: dingtalk, url: 'https://oapi.dingtalk.com/robot/send?access_token=table-token', secret: SECtable-secret }
  wecom: { type: wecom, url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=table-wecom-key' }
  aliyun: { type: aliyun_sms, access_key_id: LTAItable, access_key_secret: aliyun-table-secret, sign_name: s, template_code: SMS_1, phone_numbers: ['13800138000'] }
  tencent: { type: tencent_sms, secret_id: AKIDtable, secret_key: tencent-table-key, sdk_app_id: '1400000000', sign_name: s, template_id: '1', phone_numbers: ['+8613800138000'] }
";
    let config = parse_str("t.yaml", yaml, &Sources::system()).expect("config");
    let channels = Channels::new(Arc::new(config.clone())).expect("channels open");
    for debug in [format!("{config:?}"), format!("{channels:?}")] {
        for secret in SECRETS {
            assert!(!debug.contains(secret), "{secret} in Debug: {debug}");
        }
    }
}

#[test]
fn send_test_reports_the_classified_outcome() {
    let mock = DingTalkMock::start("cli-token", Some("SECcli"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lookout.yaml");
    let yaml = format!(
        "channels:\n  ops: {{ type: dingtalk, url: '{}', secret: SECcli }}\n",
        mock.webhook_url()
    );
    std::fs::write(&path, yaml).expect("write config");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
            .arg("--config")
            .arg(&path)
            .args(["send-test", "ops"])
            .output()
            .expect("run send-test")
    };
    let ok = run();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success() && stdout.contains("delivered"),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        mock.messages()
            .last()
            .is_some_and(|m| m.to_string().contains("LookoutTest"))
    );
    mock.misbehave(Misbehave::err_code("310000", "sign not match"), 1);
    let failed = run();
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(
        !failed.status.success() && stdout.contains("permanent failure"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("SECcli") && !stdout.contains("cli-token"),
        "{stdout}"
    );
}
