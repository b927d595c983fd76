//! The channel conformance table, through lookout's real pipeline — render, build, sign,
//! send, classify — against each kind's verifying mock: the signature is accepted, 5xx is
//! transient, a rate-limit code is rate-limited, a permanent code is permanent, oversize
//! content is split or truncated below the limit and accepted, and no secret shows in
//! `Debug` output.

mod support;

use std::sync::Arc;

use lookout::alert::Notification;
use lookout::alert::view;
use lookout::config::{Config, Sources, parse_str};
use lookout::notify::Outcome;
use lookout::notify::message;
use lookout::notify::send::Channels;
use support::mocks::{
    AliyunSmsMock, DingTalkMock, Misbehave, MockServer, TencentSmsMock, WeComMock,
};

const SECRETS: &[&str] = &[
    "SECtable-secret",
    "table-token",
    "table-wecom-key",
    "aliyun-table-secret",
    "tencent-table-key",
];

enum Mock {
    DingTalk(DingTalkMock),
    WeCom(WeComMock),
    Aliyun(AliyunSmsMock),
    Tencent(TencentSmsMock),
}

impl Mock {
    fn server(&self) -> &MockServer {
        match self {
            Mock::DingTalk(m) => m,
            Mock::WeCom(m) => m,
            Mock::Aliyun(m) => m,
            Mock::Tencent(m) => m,
        }
    }
}

struct Case {
    kind: &'static str,
    mock: Mock,
    config: Config,
    rate_limit_code: (&'static str, &'static str),
    permanent_code: (&'static str, &'static str),
}

fn case(kind: &'static str) -> Case {
    let (mock, channel, rate_limit_code, permanent_code) = match kind {
        "dingtalk" => {
            let mock = DingTalkMock::start("table-token", Some("SECtable-secret"));
            let channel = format!(
                "type: dingtalk, url: '{}', secret: SECtable-secret",
                mock.webhook_url()
            );
            (
                Mock::DingTalk(mock),
                channel,
                ("130101", "send too fast"),
                ("310000", "sign not match"),
            )
        }
        "wecom" => {
            let mock = WeComMock::start("table-wecom-key");
            let channel = format!("type: wecom, url: '{}'", mock.webhook_url());
            (
                Mock::WeCom(mock),
                channel,
                ("45009", "api freq out of limit"),
                ("93000", "invalid webhook url"),
            )
        }
        "aliyun_sms" => {
            let mock = AliyunSmsMock::start("LTAItable", "aliyun-table-secret");
            let channel = format!(
                "type: aliyun_sms, endpoint: 'http://{}', access_key_id: LTAItable, access_key_secret: aliyun-table-secret, sign_name: 监控告警, template_code: SMS_1, template_params: {{ name: '{{{{ alertname }}}}', summary: '{{{{ alerts[0].summary }}}}' }}, phone_numbers: ['13800138000']",
                mock.endpoint()
            );
            (
                Mock::Aliyun(mock),
                channel,
                ("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
                ("isv.SMS_SIGNATURE_ILLEGAL", "签名不合法"),
            )
        }
        "tencent_sms" => {
            let mock = TencentSmsMock::start("AKIDtable", "tencent-table-key");
            let channel = format!(
                "type: tencent_sms, endpoint: 'http://{}', region: ap-guangzhou, secret_id: AKIDtable, secret_key: tencent-table-key, sdk_app_id: '1400000000', sign_name: 监控告警, template_id: '1234567', template_params: ['{{{{ alertname }}}}', '{{{{ alerts[0].summary }}}}'], phone_numbers: ['+8613800138000']",
                mock.endpoint()
            );
            (
                Mock::Tencent(mock),
                channel,
                (
                    "LimitExceeded.PhoneNumberThirtySecondLimit",
                    "30秒内发送短信超过上限",
                ),
                ("AuthFailure.SignatureFailure", "签名错误"),
            )
        }
        other => unreachable!("{other}"),
    };
    let yaml = format!("channels:\n  c: {{ {channel} }}\nreceivers:\n  r: {{ channels: [c] }}\n");
    let config =
        parse_str("table.yaml", &yaml, &Sources::system()).unwrap_or_else(|e| panic!("{e}"));
    Case {
        kind,
        mock,
        config,
        rate_limit_code,
        permanent_code,
    }
}

fn payload(alerts: usize, summary: &str) -> Notification {
    let alerts: Vec<String> = (0..alerts)
        .map(|i| {
            format!(
                r#"{{"status":"firing","labels":{{"alertname":"TableAlert","severity":"critical","instance":"host-{i}:9100"}},"annotations":{{"summary":{}}},"startsAt":"2026-11-22T02:10:05Z","fingerprint":"{i:016x}"}}"#,
                serde_json::to_string(summary).expect("conformance step")
            )
        })
        .collect();
    let json = format!(
        r#"{{"status":"firing","receiver":"r","groupKey":"g","alerts":[{}]}}"#,
        alerts.join(",")
    );
    Notification::parse(json.as_bytes()).expect("conformance step")
}

/// Prepares and sends `n` through the case's channel; returns each message's outcome.
fn send(case: &Case, n: &Notification) -> Vec<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("conformance step");
    runtime.block_on(async {
        let channels = Channels::new(Arc::new(case.config.clone())).expect("conformance step");
        let channel = channels.channel("c").expect("conformance step");
        let view = view::build(n, case.config.timezone, chrono::Utc::now());
        let messages =
            message::prepare(channel, &channels.templates, &view).expect("conformance step");
        assert!(!messages.is_empty());
        let mut outcomes = Vec::new();
        for m in &messages {
            outcomes.push(channels.send(m).await);
        }
        outcomes
    })
}

fn conformance(kind: &'static str) {
    let case = case(kind);
    let server = case.mock.server();
    let small = payload(2, "交易失败率 23.5%");

    // 1. Signed and accepted by the verifying mock.
    assert_eq!(
        send(&case, &small),
        vec![Outcome::Delivered],
        "{kind}: {:?}",
        server.requests().last()
    );

    // 2. 5xx → transient.
    server.misbehave(Misbehave::Status(502), 1);
    assert!(
        matches!(send(&case, &small)[..], [Outcome::Transient(_)]),
        "{kind}"
    );

    // 3. The service's rate-limit code → rate limited.
    server.misbehave(
        Misbehave::err_code(case.rate_limit_code.0, case.rate_limit_code.1),
        1,
    );
    assert!(
        matches!(send(&case, &small)[..], [Outcome::RateLimited { .. }]),
        "{kind}"
    );

    // 4. A permanent code → permanent.
    server.misbehave(
        Misbehave::err_code(case.permanent_code.0, case.permanent_code.1),
        1,
    );
    assert!(
        matches!(send(&case, &small)[..], [Outcome::Permanent(_)]),
        "{kind}"
    );

    // 5. Oversize content is split (robots) or truncated (SMS) and still accepted.
    if let Mock::Aliyun(m) = &case.mock {
        m.set_rate_limit(
            100,
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(1),
        );
    }
    if let Mock::Tencent(m) = &case.mock {
        m.set_rate_limit(
            100,
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(1),
        );
    }
    let big = payload(
        300,
        &"提现交易失败率持续高于阈值，请检查支付通道。".repeat(4),
    );
    let outcomes = send(&case, &big);
    assert!(
        outcomes.iter().all(Outcome::is_delivered),
        "{kind}: {outcomes:?}\n{:?}",
        server.requests().last()
    );
    if matches!(case.mock, Mock::DingTalk(_) | Mock::WeCom(_)) {
        assert!(outcomes.len() > 1, "{kind}: oversize content must be split");
    }

    // 6. Secrets never show in Debug output of the configuration or the channel.
    let debug = format!("{:?}", case.config);
    for secret in SECRETS {
        assert!(!debug.contains(secret), "{kind}: {secret} in Debug");
    }
}

#[test]
fn dingtalk_passes_the_table() {
    conformance("dingtalk");
}

#[test]
fn wecom_passes_the_table() {
    conformance("wecom");
}

#[test]
fn aliyun_sms_passes_the_table() {
    conformance("aliyun_sms");
}

#[test]
fn tencent_sms_passes_the_table() {
    conformance("tencent_sms");
}

#[test]
fn dingtalk_mentions_really_ping() {
    let mock = DingTalkMock::start("ping-token", None);
    let yaml = format!(
        "channels:\n  c: {{ type: dingtalk, url: '{}', mention: {{ mobiles: ['13800000000'] }} }}\nreceivers:\n  r: {{ channels: [c] }}\n",
        mock.webhook_url()
    );
    let config = parse_str("t.yaml", &yaml, &Sources::system()).expect("conformance step");
    let case = Case {
        kind: "dingtalk",
        mock: Mock::DingTalk(mock),
        config,
        rate_limit_code: ("", ""),
        permanent_code: ("", ""),
    };
    assert_eq!(send(&case, &payload(1, "x")), vec![Outcome::Delivered]);
    let Mock::DingTalk(mock) = &case.mock else {
        unreachable!()
    };
    assert_eq!(
        mock.pings().last().cloned().unwrap_or_default(),
        vec!["13800000000".to_owned()],
        "{}",
        case.kind
    );
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
