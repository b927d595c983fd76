//! Channels end to end through lookout's real pipeline — render, build, sign, send,
//! classify — beyond the conformance table (`tests/it/mocks_conformance.rs`): mentions that
//! really ping, `send-test` (robots and voice calls), voice calls' keys, defaults and
//! short spoken variables, and secrets kept out of `Debug` and command output.

use std::sync::Arc;

use crate::support::mocks::{AliyunVoiceMock, DingTalkMock, Misbehave, TencentVoiceMock};
use lookout::alert::Notification;
use lookout::alert::view;
use lookout::channel::Options;
use lookout::config::{Config, Sources, parse_str};
use lookout::notify::Outcome;
use lookout::notify::send::Channels;

const SECRETS: &[&str] = &[
    "SECtable-secret",
    "table-token",
    "table-wecom-key",
    "aliyun-table-secret",
    "tencent-table-key",
    "aliyun-voice-table-secret",
    "tencent-voice-table-key",
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
  aliyun-voice: { type: aliyun_voice, access_key_id: LTAItable, access_key_secret: aliyun-voice-table-secret, tts_code: TTS_1, phone_numbers: ['13800138000'] }
  tencent-voice: { type: tencent_voice, secret_id: AKIDtable, secret_key: tencent-voice-table-key, voice_sdk_app_id: '1400000000', template_id: '1', phone_numbers: ['+8613800138000'] }
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

/// A resolved notification of one alert.
fn resolved() -> Notification {
    let json = r#"{"status":"resolved","receiver":"r","groupKey":"g","alerts":[{"status":"resolved","labels":{"alertname":"TableAlert","severity":"critical"},"annotations":{"summary":"x"},"startsAt":"2026-11-22T02:10:05Z","endsAt":"2026-11-22T02:20:05Z","fingerprint":"0000000000000001"}]}"#;
    Notification::parse(json.as_bytes()).expect("notification")
}

#[test]
fn voice_calls_default_to_firing_only_one_a_minute_and_short_spoken_variables() {
    let yaml = "\
channels:
  av: { type: aliyun_voice, access_key_id: LTAI, access_key_secret: s, tts_code: TTS_1, tts_params: { summary: '{{ alerts[0].summary }}', level: '{{ severity }}' }, phone_numbers: ['13800138000', '13900139000'] }
  tv: { type: tencent_voice, secret_id: AKID, secret_key: k, voice_sdk_app_id: '1400000000', template_id: '1', template_params: ['{{ alerts[0].summary }}'], phone_numbers: ['+8613800138000'] }
";
    let config = parse_str("t.yaml", yaml, &Sources::system()).expect("config");
    for name in ["av", "tv"] {
        let delivery = &config.channels[name].delivery;
        assert!(
            !delivery.send_resolved,
            "{name}: no call for a resolved alert"
        );
        assert_eq!(
            (delivery.rate_limit.count, delivery.rate_limit.per.as_secs()),
            (1, 60),
            "{name}: one call a minute per number"
        );
    }
    assert_eq!(
        config.channels["av"].targets(),
        ["aliyun_voice:13800138000", "aliyun_voice:13900139000"]
    );
    assert_eq!(
        config.channels["tv"].targets(),
        ["tencent_voice:+8613800138000"]
    );

    let channels = Channels::new(Arc::new(config)).expect("channels open");
    // 22 characters, 66 bytes: cut to the first 20 characters, not bytes.
    let summary = "提现交易失败率持续高于阈值，请检查支付通道。";
    let firing = view::build(
        &payload(1, summary),
        chrono_tz::Asia::Shanghai,
        chrono::Utc::now(),
    );
    let cut: String = summary.chars().take(20).collect();
    let prepare = |name: &str, view: &view::NotificationView| {
        let channel = channels.channel(name).expect("channel");
        channel
            .prepare(&channels.templates, view, &Options::default())
            .expect("messages built")
    };
    let calls = prepare("av", &firing);
    assert_eq!(calls.len(), 2, "one call per number");
    for (call, number) in calls.iter().zip(["13800138000", "13900139000"]) {
        assert_eq!(call.target, format!("aliyun_voice:{number}"));
        assert_eq!((call.part, call.parts), (1, 1));
        assert_eq!(call.payload["params"]["summary"], cut.as_str());
        assert_eq!(call.payload["params"]["level"], "critical");
    }
    let calls = prepare("tv", &firing);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].payload["params"][0], cut.as_str());

    let resolved = view::build(&resolved(), chrono_tz::Asia::Shanghai, chrono::Utc::now());
    assert!(prepare("av", &resolved).is_empty());
    assert!(prepare("tv", &resolved).is_empty());
}

#[test]
fn voice_keys_are_checked_with_their_positions() {
    let yaml = "\
channels:
  av:
    type: aliyun_voice
    access_key_id: LTAI
    access_key_secret: s
    called_show_number: 400-111
    phone_numbers: ['13800138000', 'call-me', '+8613900139000']
    play_times: 4
    volume: 101
    speed: -501
  tv:
    type: tencent_voice
    secret_id: AKID
    secret_key: k
    voice_sdk_app_id: '1400000000'
    template_id: '1'
    phone_numbers: ['13800138000']
    play_times: 0
  typo:
    type: tencent_voice
    template: voice.j2
";
    let error = parse_str("t.yaml", yaml, &Sources::system())
        .expect_err("invalid")
        .to_string();
    for expected in [
        "t.yaml:6:5: channels.av.called_show_number: `400-111` is not a phone number (digits only)",
        "t.yaml:7:5: channels.av.phone_numbers: `call-me` is not a phone number",
        "t.yaml:7:5: channels.av.phone_numbers: `+8613900139000`: Aliyun calls numbers without `+`",
        "t.yaml:8:5: channels.av.play_times: must be at most 3 (got 4)",
        "t.yaml:9:5: channels.av.volume: must be at most 100 (got 101)",
        "t.yaml:10:5: channels.av.speed: must be at least -500 (got -501)",
        "channels.av.tts_code: missing key `tts_code`",
        "t.yaml:17:5: channels.tv.phone_numbers: `13800138000` must be in E.164 form, e.g. +8613800000000",
        "t.yaml:18:5: channels.tv.play_times: must be at least 1 (got 0)",
        "t.yaml:21:5: channels.typo.template: unknown key `template`",
    ] {
        assert!(error.contains(expected), "{expected}\nnot in:\n{error}");
    }
}

/// `send-test` places a real (mock) call per number and prints each classified outcome;
/// the second call within the minute is the provider's own rate limit; a wrong secret is
/// permanent. No secret appears in the output.
#[test]
fn send_test_places_voice_calls() {
    let aliyun = AliyunVoiceMock::start("LTAIcli", "aliyun-voice-cli-secret");
    let tencent = TencentVoiceMock::start("AKIDcli", "tencent-voice-cli-key");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lookout.yaml");
    let yaml = format!(
        "\
channels:
  av: {{ type: aliyun_voice, endpoint: 'http://{}', access_key_id: LTAIcli, access_key_secret: aliyun-voice-cli-secret, tts_code: TTS_1, tts_params: {{ name: '{{{{ alertname }}}}', level: '{{{{ severity }}}}' }}, phone_numbers: ['13800138000'] }}
  av-wrong: {{ type: aliyun_voice, endpoint: 'http://{}', access_key_id: LTAIcli, access_key_secret: not-the-secret, tts_code: TTS_1, phone_numbers: ['13900139000'] }}
  tv: {{ type: tencent_voice, endpoint: 'http://{}', secret_id: AKIDcli, secret_key: tencent-voice-cli-key, voice_sdk_app_id: '1400000000', template_id: '1', template_params: ['{{{{ alertname }}}}'], phone_numbers: ['+8613800138000'], play_times: 1 }}
",
        aliyun.endpoint(),
        aliyun.endpoint(),
        tencent.endpoint()
    );
    std::fs::write(&path, yaml).expect("write config");
    let run = |channel: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
            .arg("--config")
            .arg(&path)
            .args(["send-test", channel])
            .output()
            .expect("run send-test");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for secret in [
            "aliyun-voice-cli-secret",
            "not-the-secret",
            "tencent-voice-cli-key",
        ] {
            assert!(!text.contains(secret), "{secret} printed: {text}");
        }
        (output.status.success(), text)
    };

    let (ok, text) = run("av");
    assert!(
        ok && text.contains("av → aliyun_voice:13800138000: delivered"),
        "{text}"
    );
    let calls = aliyun.calls();
    assert_eq!(calls.len(), 1);
    let params = calls[0].tts_param.clone().unwrap_or_default();
    assert_eq!(
        (params["name"].as_str(), params["level"].as_str()),
        ("LookoutTest", "info")
    );
    let (ok, text) = run("av");
    assert!(
        !ok && text.contains("rate limited (retry after Some(60s))"),
        "{text}"
    );
    let (ok, text) = run("av-wrong");
    assert!(
        !ok && text.contains("permanent failure: SignatureDoesNotMatch"),
        "{text}"
    );

    let (ok, text) = run("tv");
    assert!(
        ok && text.contains("tv → tencent_voice:+8613800138000: delivered"),
        "{text}"
    );
    let calls = tencent.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].template_params, vec!["LookoutTest".to_owned()]);
    assert_eq!(calls[0].play_times, Some(1));
    tencent.misbehave(Misbehave::Status(503), 1);
    let (ok, text) = run("tv");
    assert!(
        !ok && text.contains("transient failure: http 503"),
        "{text}"
    );
}
