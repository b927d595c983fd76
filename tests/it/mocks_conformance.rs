//! The channel conformance table: every HTTP channel kind — DingTalk, WeCom, Feishu,
//! Aliyun and Tencent SMS, Aliyun and Tencent voice calls — is driven through the same cases against its verifying mock
//! (`crate::support::mocks`) by lookout's real sender ([`lookout_send`]: the channel configured
//! as a user would, its message built, signed, sent and classified by
//! `notify::send::Channels`). Wrong credentials are configured; oversize content, which
//! lookout's splitting never sends, is a built message with its content blown up.
//!
//! Beside the table, one test per provider shows that its mock refuses what the real
//! service refuses (tampered signature, body, timestamp; wrong credentials; replays) with
//! the real code.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use std::sync::Arc;

use lookout::alert::{Notification, view};
use lookout::channel::sign::SignedRequest;
use lookout::channel::{
    Options, Outcome, aliyun_sms as aliyun, aliyun_voice, dingtalk, feishu, tencent_sms as tencent,
    tencent_voice, wecom,
};
use lookout::config::{Sources, parse_str};
use lookout::notify::send::Channels;
use serde_json::{Value, json};

use crate::support::http::{Response, read_response};
use crate::support::mocks::{
    AliyunSmsMock, AliyunVoiceMock, DingTalkMock, FeishuMock, Misbehave, MockServer,
    TencentSmsMock, TencentVoiceMock, Times, WeComMock,
};

const DINGTALK_TOKEN: &str = "robot-token-1";
const DINGTALK_SECRET: &str = "SEC0123456789abcdef";
const WECOM_KEY: &str = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa";
const FEISHU_TOKEN: &str = "2a6f1c3e-feishu-hook";
const FEISHU_SECRET: &str = "feishu-test-secret";
const ALIYUN_AK: &str = "LTAI5tTestAccessKey";
const ALIYUN_SECRET: &str = "aliyun-test-secret";
const TENCENT_ID: &str = "AKIDtestSecretId0123456789";
const TENCENT_KEY: &str = "tencent-test-secret-key";
const PHONE: &str = "13800138000";

/// How long the table's sender waits for an answer (the `Hang` case relies on it).
const SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// The channel kinds, a closed set as in lookout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DingTalk,
    WeCom,
    Feishu,
    Aliyun,
    Tencent,
    AliyunVoice,
    TencentVoice,
}

/// A channel under test: its kind and its running mock.
enum Rig {
    DingTalk(DingTalkMock),
    WeCom(WeComMock),
    Feishu(FeishuMock),
    Aliyun(AliyunSmsMock),
    Tencent(TencentSmsMock),
    AliyunVoice(AliyunVoiceMock),
    TencentVoice(TencentVoiceMock),
}

impl Rig {
    fn start(kind: Kind) -> Rig {
        match kind {
            Kind::DingTalk => {
                Rig::DingTalk(DingTalkMock::start(DINGTALK_TOKEN, Some(DINGTALK_SECRET)))
            }
            Kind::WeCom => Rig::WeCom(WeComMock::start(WECOM_KEY)),
            Kind::Feishu => Rig::Feishu(FeishuMock::start(FEISHU_TOKEN, Some(FEISHU_SECRET))),
            Kind::Aliyun => Rig::Aliyun(AliyunSmsMock::start(ALIYUN_AK, ALIYUN_SECRET)),
            Kind::Tencent => Rig::Tencent(TencentSmsMock::start(TENCENT_ID, TENCENT_KEY)),
            Kind::AliyunVoice => Rig::AliyunVoice(AliyunVoiceMock::start(ALIYUN_AK, ALIYUN_SECRET)),
            Kind::TencentVoice => {
                Rig::TencentVoice(TencentVoiceMock::start(TENCENT_ID, TENCENT_KEY))
            }
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Rig::DingTalk(_) => Kind::DingTalk,
            Rig::WeCom(_) => Kind::WeCom,
            Rig::Feishu(_) => Kind::Feishu,
            Rig::Aliyun(_) => Kind::Aliyun,
            Rig::Tencent(_) => Kind::Tencent,
            Rig::AliyunVoice(_) => Kind::AliyunVoice,
            Rig::TencentVoice(_) => Kind::TencentVoice,
        }
    }

    fn server(&self) -> &MockServer {
        match self {
            Rig::DingTalk(mock) => mock,
            Rig::WeCom(mock) => mock,
            Rig::Feishu(mock) => mock,
            Rig::Aliyun(mock) => mock,
            Rig::Tencent(mock) => mock,
            Rig::AliyunVoice(mock) => mock,
            Rig::TencentVoice(mock) => mock,
        }
    }

    /// Shrinks the per-target budget to `budget` per minute (blocks, where the provider
    /// blocks, stay as the provider does them).
    fn set_budget(&self, budget: usize) {
        let minute = Duration::from_secs(60);
        match self {
            Rig::DingTalk(mock) => mock.set_rate_limit(budget, minute, dingtalk::RATE_LIMIT_BLOCK),
            Rig::WeCom(mock) => mock.set_rate_limit(budget, minute, Duration::ZERO),
            Rig::Feishu(mock) => mock.set_rate_limit(budget, minute, Duration::ZERO),
            Rig::Aliyun(mock) => mock.set_rate_limit(budget, minute, Duration::ZERO),
            Rig::Tencent(mock) => mock.set_rate_limit(budget, minute, Duration::ZERO),
            Rig::AliyunVoice(mock) => mock.set_rate_limit(budget, minute, Duration::ZERO),
            Rig::TencentVoice(mock) => mock.set_rate_limit(budget, minute, Duration::ZERO),
        }
    }

    /// Turns on the length limits that are account-dependent (Tencent's 12-character
    /// template variables for individual accounts).
    fn strict_lengths(&self) {
        if let Rig::Tencent(mock) = self {
            mock.set_max_param_chars(Some(12));
        }
    }

    /// Refuses template variables longer than the provider's documented limit (Aliyun
    /// 35 characters; Tencent 20, lookout's bound for the account types it allows; voice
    /// calls 20, lookout's bound for a variable read aloud).
    fn provider_lengths(&self) {
        match self {
            Rig::Aliyun(mock) => mock.set_max_param_chars(Some(35)),
            Rig::Tencent(mock) => mock.set_max_param_chars(Some(20)),
            Rig::AliyunVoice(mock) => mock.set_max_param_chars(Some(20)),
            Rig::TencentVoice(mock) => mock.set_max_param_chars(Some(20)),
            Rig::DingTalk(_) | Rig::WeCom(_) | Rig::Feishu(_) => {}
        }
    }

    /// The provider's own rate-limit code, for `Misbehave::ErrCode`.
    fn rate_limit_code(&self) -> Misbehave {
        match self.kind() {
            Kind::DingTalk => Misbehave::err_code(410100, "发送速度太快而限流"),
            Kind::WeCom => Misbehave::err_code(45009, "api freq out of limit"),
            Kind::Feishu => Misbehave::err_code(
                11232,
                "frequency limited psm[lark.oapi.app_platform_runtime]",
            ),
            Kind::Aliyun => {
                Misbehave::err_code("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5")
            }
            Kind::Tencent => {
                Misbehave::err_code("RequestLimitExceeded", "请求的次数超过了频率限制。")
            }
            Kind::AliyunVoice => Misbehave::err_code(
                "Throttling.User",
                "Request was denied due to user flow control.",
            ),
            Kind::TencentVoice => Misbehave::err_code(
                "LimitExceeded.DeliveryFrequencyLimit",
                "下发语音消息时命中频率限制策略",
            ),
        }
    }

    /// A code the provider answers when nothing but a human can fix the request.
    fn permanent_code(&self) -> Misbehave {
        match self.kind() {
            Kind::DingTalk => Misbehave::err_code(400102, "bot is stopped"),
            Kind::WeCom => Misbehave::err_code(93000, "invalid webhook url"),
            Kind::Feishu => Misbehave::err_code(19024, "Key Words Not Found"),
            Kind::Aliyun => Misbehave::err_code("isv.SMS_SIGNATURE_ILLEGAL", "签名不合法"),
            Kind::Tencent => Misbehave::err_code(
                "FailedOperation.SignatureIncorrectOrUnapproved",
                "签名未审批或格式错误",
            ),
            Kind::AliyunVoice => Misbehave::err_code("isv.TTS_TEMPLATE_ILLEGAL", "TTS模板不合法"),
            Kind::TencentVoice => Misbehave::err_code(
                "FailedOperation.TemplateIncorrectOrUnapproved",
                "模板未审核或请求的内容与审核通过的模板内容不匹配",
            ),
        }
    }

    /// The code each provider answers a wrong secret or key with.
    fn bad_credentials_code(&self) -> &'static str {
        match self.kind() {
            Kind::DingTalk => "310000",
            Kind::WeCom => "93000",
            Kind::Feishu => "19021",
            Kind::Aliyun | Kind::AliyunVoice => "SignatureDoesNotMatch",
            Kind::Tencent | Kind::TencentVoice => "AuthFailure.SignatureFailure",
        }
    }

    /// The code each provider answers an oversize message with.
    fn too_long_code(&self) -> &'static str {
        match self.kind() {
            Kind::DingTalk => "460101",
            Kind::WeCom => "40058",
            Kind::Feishu => "19036",
            Kind::Aliyun => "isv.PARAM_LENGTH_LIMIT",
            Kind::Tencent => "InvalidParameterValue.TemplateParameterLengthLimit",
            Kind::AliyunVoice => "isv.PARAM_LENGTH_LIMIT",
            Kind::TencentVoice => "InvalidParameterValue.ContentLengthLimit",
        }
    }
}

/// What a case asks the sender to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    /// An ordinary alert.
    Normal,
    /// One too large for the channel (body, content or template variable).
    Oversize,
    /// An ordinary alert with the wrong secret (or WeCom key).
    WrongCredentials,
    /// 300 long alerts: split into parts (robots) or cut (SMS variables) by lookout; every
    /// part is sent and the outcome is the first failure, or delivered.
    Storm,
}

/// Sends one message of the case to the rig's mock and returns lookout's classification.
type Sender = fn(&Rig, Message) -> Outcome;

/// One row of the conformance table.
struct Case {
    name: &'static str,
    /// Prepares the mock (budgets, misbehaviour).
    setup: fn(&Rig),
    /// How many times the message is sent; the last outcome is the one checked.
    sends: usize,
    message: Message,
    /// `Outcome::kind()` of the last send.
    want: &'static str,
    /// Checks on the mock's side after the sends.
    check: fn(&Rig, &[Outcome]) -> Result<(), String>,
}

fn nothing(_: &Rig) {}

fn ok(_: &Rig, _: &[Outcome]) -> Result<(), String> {
    Ok(())
}

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

fn table() -> Vec<Case> {
    vec![
        Case {
            name: "signature accepted, delivered",
            setup: nothing,
            sends: 1,
            message: Message::Normal,
            want: "delivered",
            check: |rig, _| {
                let server = rig.server();
                ensure(server.accepted().len() == 1, || {
                    format!(
                        "mock accepted {} of {}",
                        server.accepted().len(),
                        server.request_count()
                    )
                })
            },
        },
        Case {
            name: "over the budget: rate limited, never past it",
            setup: |rig| rig.set_budget(2),
            sends: 3,
            message: Message::Normal,
            want: "rate_limited",
            check: |rig, outcomes| {
                let server = rig.server();
                ensure(outcomes.iter().take(2).all(Outcome::is_delivered), || {
                    format!("first two: {outcomes:?}")
                })?;
                ensure(server.rate_limited_count() == 1, || {
                    format!("rate_limited_count {}", server.rate_limited_count())
                })?;
                let most = server.max_in_any_window(Duration::from_secs(60));
                ensure(most == 2, || format!("max_in_any_window {most}"))
            },
        },
        Case {
            name: "a provider rate-limit code: rate limited",
            setup: |rig| rig.server().misbehave(rig.rate_limit_code(), 1),
            sends: 1,
            message: Message::Normal,
            want: "rate_limited",
            check: ok,
        },
        Case {
            name: "5xx: transient",
            setup: |rig| rig.server().misbehave(Misbehave::Status(500), 1),
            sends: 1,
            message: Message::Normal,
            want: "transient",
            check: |rig, _| {
                ensure(rig.server().accepted().is_empty(), || {
                    "a 500 delivered".to_owned()
                })
            },
        },
        Case {
            name: "after a 503 the next send is delivered",
            setup: |rig| rig.server().misbehave(Misbehave::Status(503), 1),
            sends: 2,
            message: Message::Normal,
            want: "delivered",
            check: |_, outcomes| {
                ensure(
                    outcomes.first().map(Outcome::kind) == Some("transient"),
                    || format!("{outcomes:?}"),
                )
            },
        },
        Case {
            name: "200 with an HTML page: transient",
            setup: |rig| {
                rig.server()
                    .misbehave(Misbehave::NonJson, Times::UntilReset)
            },
            sends: 1,
            message: Message::Normal,
            want: "transient",
            check: ok,
        },
        Case {
            name: "no answer until the client times out: transient",
            setup: |rig| rig.server().misbehave(Misbehave::Hang, Times::UntilReset),
            sends: 1,
            message: Message::Normal,
            want: "transient",
            check: |rig, _| {
                let last = rig.server().last();
                ensure(last.is_some_and(|r| r.reply.is_none()), || {
                    "the hung request was not logged unanswered".to_owned()
                })
            },
        },
        Case {
            name: "a slow answer is still delivered",
            setup: |rig| {
                rig.server()
                    .misbehave(Misbehave::Delay(Duration::from_millis(200)), 1)
            },
            sends: 1,
            message: Message::Normal,
            want: "delivered",
            check: ok,
        },
        Case {
            name: "wrong secret or key: permanent",
            setup: nothing,
            sends: 1,
            message: Message::WrongCredentials,
            want: "permanent",
            check: |rig, _| {
                let code = rig.server().last().and_then(|r| r.code);
                ensure(code.as_deref() == Some(rig.bad_credentials_code()), || {
                    format!("mock answered {code:?}")
                })
            },
        },
        Case {
            name: "oversize: too long",
            setup: Rig::strict_lengths,
            sends: 1,
            message: Message::Oversize,
            want: "too_long",
            check: |rig, _| {
                let code = rig.server().last().and_then(|r| r.code);
                ensure(code.as_deref() == Some(rig.too_long_code()), || {
                    format!("mock answered {code:?}")
                })
            },
        },
        Case {
            name: "a permanent code: permanent",
            setup: |rig| rig.server().misbehave(rig.permanent_code(), 1),
            sends: 1,
            message: Message::Normal,
            want: "permanent",
            check: ok,
        },
        Case {
            name: "a storm is split or cut, and every part accepted",
            setup: |rig| {
                rig.set_budget(100);
                rig.provider_lengths();
            },
            sends: 1,
            message: Message::Storm,
            want: "delivered",
            check: |rig, _| {
                let accepted = rig.server().accepted().len();
                match rig {
                    Rig::DingTalk(_) | Rig::WeCom(_) | Rig::Feishu(_) => {
                        ensure(accepted > 1, || format!("{accepted} part(s): not split"))
                    }
                    // The long summary variable is cut to exactly the provider's limit.
                    Rig::Aliyun(mock) => {
                        let sent = mock.sent();
                        let summary = sent
                            .first()
                            .and_then(|s| s.template_param.as_ref())
                            .and_then(|p| p["summary"].as_str())
                            .map(|s| s.chars().count());
                        ensure(accepted == 1 && summary == Some(35), || {
                            format!("{accepted} SMS, summary of {summary:?} chars")
                        })
                    }
                    Rig::Tencent(mock) => {
                        let sent = mock.sent();
                        let summary = sent
                            .first()
                            .and_then(|s| s.template_params.get(2))
                            .map(|s| s.chars().count());
                        ensure(accepted == 1 && summary == Some(20), || {
                            format!("{accepted} SMS, summary of {summary:?} chars")
                        })
                    }
                    // One call; the summary read aloud is cut to 20 characters.
                    Rig::AliyunVoice(mock) => {
                        let calls = mock.calls();
                        let summary = calls
                            .first()
                            .and_then(|c| c.tts_param.as_ref())
                            .and_then(|p| p.get("summary"))
                            .map(|s| s.chars().count());
                        ensure(accepted == 1 && summary == Some(20), || {
                            format!("{accepted} call(s), summary of {summary:?} chars")
                        })
                    }
                    Rig::TencentVoice(mock) => {
                        let calls = mock.calls();
                        let summary = calls
                            .first()
                            .and_then(|c| c.template_params.get(1))
                            .map(|s| s.chars().count());
                        ensure(accepted == 1 && summary == Some(20), || {
                            format!("{accepted} call(s), summary of {summary:?} chars")
                        })
                    }
                }
            },
        },
    ]
}

/// Runs every case against a fresh mock of `kind`; panics listing every failure.
fn run_table(kind: Kind, sender: Sender) {
    let mut failures = Vec::new();
    for case in table() {
        let rig = Rig::start(kind);
        (case.setup)(&rig);
        let outcomes: Vec<Outcome> = (0..case.sends)
            .map(|_| sender(&rig, case.message))
            .collect();
        let last = outcomes.last().map(Outcome::kind).unwrap_or("none");
        if last != case.want {
            failures.push(format!(
                "{kind:?} / {}: want {}, got {outcomes:?}; mock log: {:?}",
                case.name,
                case.want,
                rig.server()
                    .requests()
                    .iter()
                    .map(|r| (
                        r.code.clone(),
                        r.reply.as_ref().map(|reply| reply.body_text())
                    ))
                    .collect::<Vec<_>>()
            ));
        } else if let Err(why) = (case.check)(&rig, &outcomes) {
            failures.push(format!("{kind:?} / {}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures.join("\n")
    );
}

/// The table's sender: lookout's own — the channel configured as a user would (with the
/// wrong secret or key for `WrongCredentials`), the message built from a notification by
/// the channel, then signed, sent and classified by `Channels::send`. An `Oversize`
/// message is the built one with its content blown up past the provider's limit, which
/// lookout's own splitting never sends.
fn lookout_send(rig: &Rig, message: Message) -> Outcome {
    let wrong = message == Message::WrongCredentials;
    let channel = match rig {
        Rig::DingTalk(mock) => format!(
            "type: dingtalk, url: '{}', secret: {}",
            mock.webhook_url(),
            if wrong { "SEC-wrong" } else { DINGTALK_SECRET }
        ),
        Rig::WeCom(mock) => format!(
            "type: wecom, url: '{}'",
            if wrong {
                mock.webhook_url_for("wrong-key")
            } else {
                mock.webhook_url()
            }
        ),
        Rig::Feishu(mock) => format!(
            "type: feishu, url: '{}', secret: {}",
            mock.webhook_url(),
            if wrong { "wrong-secret" } else { FEISHU_SECRET }
        ),
        Rig::Aliyun(mock) => format!(
            "type: aliyun_sms, endpoint: 'http://{}', access_key_id: {ALIYUN_AK}, access_key_secret: {}, sign_name: 监控中心, template_code: SMS_123456789, template_params: {{ alert: '{{{{ alertname }}}}', value: '95%', summary: '{{{{ alerts[0].summary }}}}' }}, phone_numbers: ['{PHONE}']",
            mock.endpoint(),
            if wrong { "wrong-secret" } else { ALIYUN_SECRET }
        ),
        Rig::Tencent(mock) => format!(
            "type: tencent_sms, endpoint: 'http://{}', secret_id: {TENCENT_ID}, secret_key: {}, sdk_app_id: '1400006666', sign_name: 监控中心, template_id: '1110', template_params: ['{{{{ alertname }}}}', '95%', '{{{{ alerts[0].summary }}}}'], phone_numbers: ['+86{PHONE}']",
            mock.endpoint(),
            if wrong { "wrong-key" } else { TENCENT_KEY }
        ),
        Rig::AliyunVoice(mock) => format!(
            "type: aliyun_voice, endpoint: 'http://{}', access_key_id: {ALIYUN_AK}, access_key_secret: {}, called_show_number: '4001112222', tts_code: TTS_10001, tts_params: {{ name: '{{{{ alertname }}}}', summary: '{{{{ alerts[0].summary }}}}' }}, phone_numbers: ['{PHONE}'], play_times: 2",
            mock.endpoint(),
            if wrong { "wrong-secret" } else { ALIYUN_SECRET }
        ),
        Rig::TencentVoice(mock) => format!(
            "type: tencent_voice, endpoint: 'http://{}', secret_id: {TENCENT_ID}, secret_key: {}, voice_sdk_app_id: '1400006666', template_id: '4356', template_params: ['{{{{ alertname }}}}', '{{{{ alerts[0].summary }}}}'], phone_numbers: ['+86{PHONE}'], play_times: 2",
            mock.endpoint(),
            if wrong { "wrong-key" } else { TENCENT_KEY }
        ),
    };
    let yaml = format!(
        "channels:\n  c: {{ {channel}, timeout: {}ms }}\n",
        SEND_TIMEOUT.as_millis()
    );
    let config = parse_str("table.yaml", &yaml, &Sources::system()).expect("table config");
    let notification = notification(if message == Message::Storm { 300 } else { 1 });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let channels = Channels::new(Arc::new(config)).expect("channels open");
        let channel = channels.channel("c").expect("channel configured");
        let view = view::build(&notification, chrono_tz::Asia::Shanghai, Utc::now());
        let mut messages = channel
            .prepare(&channels.templates, &view, &Options::default())
            .expect("messages built");
        if message == Message::Oversize {
            blow_up(rig.kind(), &mut messages[0].payload);
        }
        for m in &messages {
            let outcome = channels.send(m).await;
            if !outcome.is_delivered() {
                return outcome;
            }
        }
        Outcome::Delivered
    })
}

/// A firing notification of `alerts` alerts with long Chinese summaries.
fn notification(alerts: usize) -> Notification {
    let summary = "提现交易失败率持续高于阈值，请检查支付通道。".repeat(4);
    let alerts: Vec<String> = (0..alerts)
        .map(|i| {
            format!(
                r#"{{"status":"firing","labels":{{"alertname":"磁盘使用率过高","severity":"critical","instance":"db-{i}"}},"annotations":{{"summary":"{summary}"}},"startsAt":"2026-11-22T02:10:05Z","fingerprint":"{i:016x}"}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{"status":"firing","receiver":"r","groupKey":"g","alerts":[{}]}}"#,
        alerts.join(",")
    );
    Notification::parse(json.as_bytes()).expect("table notification")
}

/// Replaces the content of a built message's payload with one too large for the
/// provider: a 26,000-byte DingTalk body, 4,097 bytes of WeCom markdown, a 26,000-byte
/// Feishu card, a 36-character Aliyun variable, a 13-character Tencent variable, 250
/// characters of Aliyun voice variables, 351 of Tencent voice variables.
fn blow_up(kind: Kind, payload: &mut Value) {
    match kind {
        Kind::DingTalk => payload["markdown"]["text"] = json!("磁盘告警 ".repeat(2000)),
        Kind::WeCom => payload["markdown"]["content"] = json!("x".repeat(4097)),
        Kind::Feishu => payload["card"]["elements"][0]["content"] = json!("飞书告警 ".repeat(2000)),
        Kind::Aliyun => payload["params"]["alert"] = json!("磁".repeat(36)),
        Kind::Tencent => payload["params"][0] = json!("磁".repeat(13)),
        Kind::AliyunVoice => payload["params"]["name"] = json!("磁".repeat(250)),
        Kind::TencentVoice => payload["params"][0] = json!("磁".repeat(351)),
    }
}

/// A robot webhook call as a request: POST, JSON body.
fn robot_request(url: String, body: &Value) -> SignedRequest {
    SignedRequest {
        method: "POST",
        url,
        headers: vec![(
            "Content-Type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        )],
        body: body.to_string().into_bytes(),
    }
}

/// A fresh `x-acs-signature-nonce`.
fn nonce() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// Sends `request` exactly as signed to `connect` — the URL's authority goes into `Host`
/// (so a request signed for `dysmsapi.aliyuncs.com` reaches the mock with that host, as
/// through `curl --resolve`) — and reads one response, giving up after `timeout`.
fn deliver(
    request: &SignedRequest,
    connect: SocketAddr,
    timeout: Duration,
) -> io::Result<Response> {
    let rest = request
        .url
        .strip_prefix("https://")
        .or_else(|| request.url.strip_prefix("http://"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an http(s) URL"))?;
    let (authority, target) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let stream = TcpStream::connect_timeout(&connect, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {authority}\r\n",
        request.method
    );
    for (name, value) in &request.headers {
        if !name.eq_ignore_ascii_case("host") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    ));
    let mut writer = &stream;
    writer.write_all(head.as_bytes())?;
    writer.write_all(&request.body)?;
    writer.flush()?;
    read_response(&mut BufReader::new(&stream), false)
}

fn json_of(response: &Response) -> Value {
    response.json()
}

#[test]
fn dingtalk_passes_the_conformance_table() {
    run_table(Kind::DingTalk, lookout_send);
}

#[test]
fn feishu_passes_the_conformance_table() {
    run_table(Kind::Feishu, lookout_send);
}

#[test]
fn wecom_passes_the_conformance_table() {
    run_table(Kind::WeCom, lookout_send);
}

#[test]
fn aliyun_sms_passes_the_conformance_table() {
    run_table(Kind::Aliyun, lookout_send);
}

#[test]
fn tencent_sms_passes_the_conformance_table() {
    run_table(Kind::Tencent, lookout_send);
}

#[test]
fn aliyun_voice_passes_the_conformance_table() {
    run_table(Kind::AliyunVoice, lookout_send);
}

#[test]
fn tencent_voice_passes_the_conformance_table() {
    run_table(Kind::TencentVoice, lookout_send);
}

/// DingTalk: the signature must be fresh, correct and percent-encoded exactly once; the
/// token must exist; the body must be a valid message; 20 a minute, then a block.
#[test]
fn dingtalk_mock_refuses_what_dingtalk_refuses() {
    let mock = DingTalkMock::start(DINGTALK_TOKEN, Some(DINGTALK_SECRET));
    let message = json!({
        "msgtype": "markdown",
        "markdown": {"title": "告警", "text": "磁盘满 @13800138000"},
        "at": {"atMobiles": ["13800138000", "13900139000"]}
    });
    let post = |url: String, body: &Value| {
        deliver(&robot_request(url, body), mock.addr(), SEND_TIMEOUT).expect("mock answers")
    };
    let errcode = |response: &Response| json_of(response)["errcode"].as_i64();
    let now = Utc::now().timestamp_millis();

    let good = post(
        dingtalk::signed_url(&mock.webhook_url(), DINGTALK_SECRET, now),
        &message,
    );
    assert_eq!(good.status, 200);
    assert_eq!(json_of(&good), json!({"errcode": 0, "errmsg": "ok"}));
    assert_eq!(
        dingtalk::classify(good.status, &good.body),
        Outcome::Delivered
    );
    assert_eq!(mock.pings(), vec![vec!["13800138000".to_owned()]]);

    // Signed with another secret.
    let response = post(
        dingtalk::signed_url(&mock.webhook_url(), "SEC-other", now),
        &message,
    );
    assert_eq!(errcode(&response), Some(310000));
    assert!(matches!(
        dingtalk::classify(200, &response.body),
        Outcome::Permanent(_)
    ));

    // No signature at all.
    assert_eq!(errcode(&post(mock.webhook_url(), &message)), Some(310000));

    // Two hours old, correctly signed for that time.
    let stale = now - 2 * 3600 * 1000;
    let response = post(
        dingtalk::signed_url(&mock.webhook_url(), DINGTALK_SECRET, stale),
        &message,
    );
    assert_eq!(errcode(&response), Some(310000));
    assert!(
        json_of(&response)["errmsg"]
            .as_str()
            .unwrap_or("")
            .contains("过期")
    );

    // Encoded twice: `%2B` becomes `%252B` and decodes to `%2B`, not `+`.
    let once = dingtalk::signed_url(&mock.webhook_url(), DINGTALK_SECRET, now);
    let (base, sign) = once.rsplit_once("&sign=").expect("signed_url appends sign");
    let twice = format!("{base}&sign={}", crate::support::http::percent_encode(sign));
    assert_ne!(twice, once);
    assert_eq!(errcode(&post(twice, &message)), Some(310000));

    // Not encoded: find a timestamp whose signature has a `+`, which decodes to a space.
    let (ts, raw) = (0..1000)
        .map(|back| now - back)
        .map(|ts| (ts, dingtalk::sign(DINGTALK_SECRET, ts)))
        .find(|(_, sign)| sign.contains('+'))
        .expect("about half of all signatures contain a +");
    let raw_url = format!("{}&timestamp={ts}&sign={raw}", mock.webhook_url());
    assert_eq!(errcode(&post(raw_url, &message)), Some(310000));
    // The same signature encoded once is fine.
    let encoded = format!(
        "{}&timestamp={ts}&sign={}",
        mock.webhook_url(),
        crate::support::http::percent_encode(&raw)
    );
    assert_eq!(errcode(&post(encoded, &message)), Some(0));

    // Unknown robot.
    let unknown = mock.webhook_url_for("no-such-robot");
    let response = post(
        dingtalk::signed_url(&unknown, DINGTALK_SECRET, now),
        &message,
    );
    assert_eq!(errcode(&response), Some(300001));

    // Body problems: markdown without a title; not JSON content.
    let signed = || {
        dingtalk::signed_url(
            &mock.webhook_url(),
            DINGTALK_SECRET,
            Utc::now().timestamp_millis(),
        )
    };
    let untitled = json!({"msgtype": "markdown", "markdown": {"text": "x"}});
    assert_eq!(errcode(&post(signed(), &untitled)), Some(40035));
    let mut plain = robot_request(signed(), &message);
    plain.headers = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
    let response = deliver(&plain, mock.addr(), SEND_TIMEOUT).expect("mock answers");
    assert_eq!(errcode(&response), Some(43004));

    // 20,000 bytes of body is the limit.
    let body_of = |text_len: usize| {
        let shell = json!({"msgtype": "text", "text": {"content": ""}})
            .to_string()
            .len();
        json!({"msgtype": "text", "text": {"content": "x".repeat(text_len - shell)}})
    };
    assert_eq!(errcode(&post(signed(), &body_of(20_000))), Some(0));
    let response = post(signed(), &body_of(20_001));
    assert_eq!(errcode(&response), Some(460101));
    assert!(matches!(
        dingtalk::classify(200, &response.body),
        Outcome::TooLong(_)
    ));
}

/// DingTalk's real budget: 20 in a minute, the 21st is 130101, and the robot stays blocked
/// after the window (shrunk here to keep the test short).
#[test]
fn feishu_mock_refuses_what_feishu_refuses() {
    let mock = FeishuMock::start(FEISHU_TOKEN, Some(FEISHU_SECRET));
    let card = json!({"msg_type": "interactive", "card": {"elements": [{"tag": "markdown", "content": "磁盘告警"}]}});
    let signed = |secret: &str, timestamp: i64, body: &Value| {
        let mut body = body.clone();
        body["timestamp"] = json!(timestamp.to_string());
        body["sign"] = json!(feishu::sign(secret, timestamp));
        body
    };
    let post = |url: String, body: &Value| {
        deliver(&robot_request(url, body), mock.addr(), SEND_TIMEOUT).expect("mock answers")
    };
    let code = |response: &Response| json_of(response)["code"].as_i64();
    let now = Utc::now().timestamp();

    let good = post(mock.webhook_url(), &signed(FEISHU_SECRET, now, &card));
    assert_eq!(
        json_of(&good),
        json!({"code": 0, "data": {}, "msg": "success"})
    );
    // Wrong secret, tampered signature, no signature, an hour and a minute old.
    assert_eq!(
        code(&post(mock.webhook_url(), &signed("other", now, &card))),
        Some(19021)
    );
    let mut tampered = signed(FEISHU_SECRET, now, &card);
    tampered["timestamp"] = json!((now + 1).to_string());
    assert_eq!(code(&post(mock.webhook_url(), &tampered)), Some(19021));
    assert_eq!(code(&post(mock.webhook_url(), &card)), Some(19021));
    let stale = signed(FEISHU_SECRET, now - 3_660, &card);
    assert_eq!(code(&post(mock.webhook_url(), &stale)), Some(19021));
    // Unknown bot, oversize body, unknown message type.
    assert_eq!(
        code(&post(
            mock.webhook_url_for("nope"),
            &signed(FEISHU_SECRET, now, &card)
        )),
        Some(19001)
    );
    let mut big = card.clone();
    big["card"]["elements"][0]["content"] = json!("飞".repeat(7_000));
    assert_eq!(
        code(&post(mock.webhook_url(), &signed(FEISHU_SECRET, now, &big))),
        Some(19036)
    );
    let odd = json!({"msg_type": "markdown", "content": {"text": "x"}});
    assert_eq!(
        code(&post(mock.webhook_url(), &signed(FEISHU_SECRET, now, &odd))),
        Some(19002)
    );
    // Five a second, then 9499 (six sends within one second; a stalled machine retries).
    let burst = (0..3)
        .find_map(|attempt| {
            let bot = format!("burst{attempt}");
            mock.add_bot(&bot, None);
            let started = Instant::now();
            let codes: Vec<_> = (0..6)
                .map(|_| code(&post(mock.webhook_url_for(&bot), &card)))
                .collect();
            (started.elapsed() < Duration::from_millis(900)).then_some((bot, codes))
        })
        .expect("six local requests within a second");
    assert_eq!(burst.1[..5], [Some(0); 5]);
    assert_eq!(burst.1[5], Some(9499), "{:?}", burst.1);
    assert!(matches!(
        feishu::classify(200, &post(mock.webhook_url_for(&burst.0), &card).body),
        Outcome::RateLimited { .. }
    ));
}

#[test]
fn dingtalk_budget_and_block() {
    let mock = DingTalkMock::start(DINGTALK_TOKEN, None);
    let message = json!({"msgtype": "text", "text": {"content": "告警"}});
    let send = || {
        let response = deliver(
            &robot_request(mock.webhook_url(), &message),
            mock.addr(),
            SEND_TIMEOUT,
        )
        .expect("mock answers");
        json_of(&response)["errcode"].as_i64()
    };
    let codes: Vec<Option<i64>> = (0..21).map(|_| send()).collect();
    assert!(codes.iter().take(20).all(|c| *c == Some(0)), "{codes:?}");
    assert_eq!(codes.last(), Some(&Some(130101)));
    assert_eq!(mock.messages().len(), 20);
    assert_eq!(mock.rate_limited_count(), 1);
    assert_eq!(mock.max_in_any_window(Duration::from_secs(60)), 20);
    let last = mock.last().expect("logged");
    assert_eq!(
        dingtalk::classify(200, &last.reply.expect("answered").body),
        Outcome::RateLimited {
            retry_after: Some(dingtalk::RATE_LIMIT_BLOCK)
        }
    );

    // Shrunk: 2 per second, then blocked for 5 s. The "still blocked" send comes 1.5 s
    // in, past the window and 3.5 s before the block ends, so a slow CI box cannot make
    // it land on the wrong side of either.
    mock.set_rate_limit(2, Duration::from_secs(1), Duration::from_secs(5));
    assert_eq!((send(), send(), send()), (Some(0), Some(0), Some(130101)));
    let blocked_at = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(send(), Some(130101), "still blocked after the window");
    std::thread::sleep(
        Duration::from_secs(5).saturating_sub(blocked_at.elapsed()) + Duration::from_millis(300),
    );
    assert_eq!(send(), Some(0), "the block has lifted");

    // Every robot has its own budget.
    mock.add_robot("second", None);
    let other = deliver(
        &robot_request(mock.webhook_url_for("second"), &message),
        mock.addr(),
        SEND_TIMEOUT,
    )
    .expect("mock answers");
    assert_eq!(json_of(&other)["errcode"], 0);
}

/// WeCom: the key is the credential; sizes in bytes; 20 a minute.
#[test]
fn wecom_mock_refuses_what_wecom_refuses() {
    let mock = WeComMock::start(WECOM_KEY);
    let post = |url: String, body: Value| {
        deliver(&robot_request(url, &body), mock.addr(), SEND_TIMEOUT).expect("mock answers")
    };
    let markdown =
        |content: String| json!({"msgtype": "markdown", "markdown": {"content": content}});
    let text = |content: String| json!({"msgtype": "text", "text": {"content": content}});

    let good = post(mock.webhook_url(), markdown("告".repeat(1365)));
    assert_eq!(json_of(&good), json!({"errcode": 0, "errmsg": "ok"}));

    let response = post(mock.webhook_url_for("wrong"), markdown("x".to_owned()));
    assert_eq!(json_of(&response)["errcode"], 93000);
    assert!(matches!(
        wecom::classify(200, &response.body),
        Outcome::Permanent(_)
    ));

    let missing_key = format!("{}/cgi-bin/webhook/send", mock.base_url());
    let response = post(missing_key, markdown("x".to_owned()));
    assert_eq!(json_of(&response)["errcode"], 40058);
    assert!(matches!(
        wecom::classify(200, &response.body),
        Outcome::Permanent(_)
    ));

    let response = post(mock.webhook_url(), markdown("告".repeat(1366))); // 4,098 bytes
    assert_eq!(json_of(&response)["errcode"], 40058);
    assert!(matches!(
        wecom::classify(200, &response.body),
        Outcome::TooLong(_)
    ));

    assert_eq!(
        json_of(&post(mock.webhook_url(), text("x".repeat(2048))))["errcode"],
        0
    );
    let response = post(mock.webhook_url(), text("x".repeat(2049)));
    assert!(matches!(
        wecom::classify(200, &response.body),
        Outcome::TooLong(_)
    ));

    let response = post(mock.webhook_url(), json!({"msgtype": "markdown2"}));
    assert_eq!(json_of(&response)["errcode"], 40008);

    // 20 a minute: two delivered above, 18 more, then 45009.
    for _ in 0..18 {
        assert_eq!(
            json_of(&post(mock.webhook_url(), text("x".to_owned())))["errcode"],
            0
        );
    }
    let response = post(mock.webhook_url(), text("x".to_owned()));
    assert_eq!(json_of(&response)["errcode"], 45009);
    assert_eq!(
        wecom::classify(200, &response.body),
        Outcome::RateLimited {
            retry_after: Some(wecom::RATE_LIMIT_PAUSE)
        }
    );
    assert_eq!(mock.messages().len(), 20);
    assert_eq!(mock.max_in_any_window(Duration::from_secs(60)), 20);
}

fn aliyun_sms<'a>(
    numbers: &'a [String],
    params: &'a BTreeMap<String, String>,
) -> aliyun::SendSms<'a> {
    aliyun::SendSms {
        phone_numbers: numbers,
        sign_name: "监控中心",
        template_code: "SMS_123456789",
        template_param: params,
    }
}

/// Aliyun: the V3 signature over query, headers and body; the date window; the nonce;
/// the AccessKey; TemplateParam strings; per-number flow control.
#[test]
fn aliyun_mock_refuses_what_aliyun_refuses() {
    let mock = AliyunSmsMock::start(ALIYUN_AK, ALIYUN_SECRET);
    let mut params = BTreeMap::new();
    params.insert("alert".to_owned(), "磁盘 95%".to_owned());
    let number = |n: u32| vec![format!("1380013{n:04}")];
    let sign = |numbers: &[String], secret: &str, date: DateTime<Utc>| {
        aliyun::sign_send_sms(
            aliyun::DEFAULT_ENDPOINT,
            &aliyun_sms(numbers, &params),
            ALIYUN_AK,
            secret,
            date,
            &nonce(),
        )
    };
    let send = |request: &SignedRequest| {
        deliver(request, mock.addr(), SEND_TIMEOUT).expect("mock answers")
    };
    let code = |response: &Response| json_of(response)["Code"].as_str().unwrap_or("").to_owned();

    let request = sign(&number(1), ALIYUN_SECRET, Utc::now());
    let response = send(&request);
    assert_eq!(
        (response.status, code(&response)),
        (200, "OK".to_owned()),
        "{}",
        response.text()
    );
    assert!(
        json_of(&response)["BizId"]
            .as_str()
            .is_some_and(|id| id.ends_with("^0"))
    );
    assert_eq!(
        aliyun::classify(response.status, &response.body),
        Outcome::Delivered
    );
    let sent = mock.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].phone_numbers, number(1));
    assert_eq!(sent[0].sign_name, "监控中心");
    assert_eq!(sent[0].template_param, Some(json!({"alert": "磁盘 95%"})));

    // Replayed: the nonce was used.
    let response = send(&request);
    assert_eq!(
        (response.status, code(&response)),
        (400, "SignatureNonceUsed".to_owned())
    );

    // A signed part changed after signing: query, a signed header, the body.
    let mut tampered = sign(&number(2), ALIYUN_SECRET, Utc::now());
    tampered.url = tampered.url.replace("13800130002", "13800130003");
    let response = send(&tampered);
    assert_eq!(
        (response.status, code(&response)),
        (400, "SignatureDoesNotMatch".to_owned())
    );
    assert!(matches!(
        aliyun::classify(400, &response.body),
        Outcome::Permanent(_)
    ));

    let mut tampered = sign(&number(2), ALIYUN_SECRET, Utc::now());
    for (name, value) in &mut tampered.headers {
        if name == "x-acs-date" {
            *value = aliyun::acs_date(Utc::now() - chrono::Duration::seconds(1));
        }
    }
    assert_eq!(code(&send(&tampered)), "SignatureDoesNotMatch");

    let mut tampered = sign(&number(2), ALIYUN_SECRET, Utc::now());
    tampered.body = b"PhoneNumbers=13900139000".to_vec();
    assert_eq!(code(&send(&tampered)), "SignatureDoesNotMatch");

    // An x-acs-* header added after signing is not covered by SignedHeaders.
    let mut tampered = sign(&number(2), ALIYUN_SECRET, Utc::now());
    tampered
        .headers
        .push(("x-acs-extra".to_owned(), "1".to_owned()));
    assert_eq!(code(&send(&tampered)), "IncompleteSignature");

    // Signed 20 minutes ago: the signature is right, the date is not.
    let stale = sign(
        &number(2),
        ALIYUN_SECRET,
        Utc::now() - chrono::Duration::minutes(20),
    );
    let response = send(&stale);
    assert_eq!(
        (response.status, code(&response)),
        (400, "InvalidTimeStamp.Expired".to_owned())
    );

    // Wrong secret; unknown AccessKey (a 404, as the real gateway answers).
    assert_eq!(
        code(&send(&sign(&number(2), "wrong", Utc::now()))),
        "SignatureDoesNotMatch"
    );
    let unknown = aliyun::sign_send_sms(
        aliyun::DEFAULT_ENDPOINT,
        &aliyun_sms(&number(2), &params),
        "LTAI-unknown",
        ALIYUN_SECRET,
        Utc::now(),
        &nonce(),
    );
    let response = send(&unknown);
    assert_eq!(
        (response.status, code(&response)),
        (404, "InvalidAccessKeyId.NotFound".to_owned())
    );
    assert!(matches!(
        aliyun::classify(404, &response.body),
        Outcome::Permanent(_)
    ));

    // Another action or version.
    let query = aliyun::send_sms_query(&aliyun_sms(&number(2), &params));
    let signed = |action: &str,
                  version: &str,
                  query: &BTreeMap<String, String>,
                  body: &[u8],
                  content_type: Option<&str>| {
        let nonce = nonce();
        let req = aliyun::Request {
            endpoint: aliyun::DEFAULT_ENDPOINT,
            action,
            version,
            query,
            body,
            content_type,
            date: Utc::now(),
            nonce: &nonce,
        };
        aliyun::sign_request(&req, ALIYUN_AK, ALIYUN_SECRET)
    };
    let response = send(&signed(
        "SendBatchSms",
        aliyun::SEND_SMS_VERSION,
        &query,
        b"",
        None,
    ));
    assert_eq!(
        (response.status, code(&response)),
        (404, "InvalidAction.NotFound".to_owned())
    );
    let response = send(&signed("SendSms", "2018-01-01", &query, b"", None));
    assert_eq!(
        (response.status, code(&response)),
        (400, "InvalidVersion".to_owned())
    );

    // TemplateParam values must be strings (lookout's types make that so; a hand-made
    // query shows the mock checks it).
    let mut numeric = query.clone();
    numeric.insert("TemplateParam".to_owned(), r#"{"alert":95}"#.to_owned());
    let response = send(&signed(
        "SendSms",
        aliyun::SEND_SMS_VERSION,
        &numeric,
        b"",
        None,
    ));
    assert_eq!(
        (response.status, code(&response)),
        (200, "isv.INVALID_JSON_PARAM".to_owned())
    );
    assert!(matches!(
        aliyun::classify(200, &response.body),
        Outcome::Permanent(_)
    ));

    // Parameters in a form body are accepted as well as in the query.
    let form: String = query
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::support::http::percent_encode(k),
                crate::support::http::percent_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let empty = BTreeMap::new();
    let response = send(&signed(
        "SendSms",
        aliyun::SEND_SMS_VERSION,
        &empty,
        form.as_bytes(),
        Some("application/x-www-form-urlencoded"),
    ));
    assert_eq!(code(&response), "OK", "{}", response.text());
    assert_eq!(
        mock.sent().last().map(|s| s.phone_numbers.clone()),
        Some(number(2))
    );

    // Per-number flow control: number 2 just got one; a second within the minute is refused.
    let response = send(&sign(&number(2), ALIYUN_SECRET, Utc::now()));
    assert_eq!(
        (response.status, code(&response)),
        (200, "isv.BUSINESS_LIMIT_CONTROL".to_owned())
    );
    assert_eq!(json_of(&response)["Message"], "触发分钟级流控Permits:1");
    assert_eq!(
        aliyun::classify(200, &response.body),
        Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert_eq!(mock.rate_limited_count(), 1);
    assert_eq!(mock.accepted().len(), 2);
}

fn tencent_sms<'a>(numbers: &'a [String], params: &'a [String]) -> tencent::SendSms<'a> {
    tencent::SendSms {
        sdk_app_id: "1400006666",
        sign_name: "监控中心",
        template_id: "1110",
        template_params: params,
        phone_numbers: numbers,
    }
}

/// Tencent: the TC3 signature over headers and body; the five-minute window and the UTC
/// date; the SecretId; per-number results and limits inside an HTTP 200.
#[test]
fn tencent_mock_refuses_what_tencent_refuses() {
    let mock = TencentSmsMock::start(TENCENT_ID, TENCENT_KEY);
    let params = vec!["磁盘".to_owned(), "95%".to_owned()];
    let sign = |numbers: &[String], id: &str, key: &str, at: DateTime<Utc>| {
        tencent::sign_send_sms("ap-guangzhou", &tencent_sms(numbers, &params), id, key, at)
    };
    let send = |request: &SignedRequest| {
        deliver(request, mock.addr(), SEND_TIMEOUT).expect("mock answers")
    };
    let error_code = |response: &Response| {
        json_of(response)["Response"]["Error"]["Code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let one = vec!["+8613800138000".to_owned()];

    let response = send(&sign(&one, TENCENT_ID, TENCENT_KEY, Utc::now()));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = json_of(&response);
    assert_eq!(body["Response"]["SendStatusSet"][0]["Code"], "Ok", "{body}");
    assert_eq!(
        body["Response"]["SendStatusSet"][0]["PhoneNumber"],
        "+8613800138000"
    );
    assert_eq!(tencent::classify(200, &response.body), Outcome::Delivered);
    assert_eq!(mock.sent().len(), 1);
    assert_eq!(mock.sent()[0].template_params, params);

    // Body changed after signing.
    let mut tampered = sign(
        &["+8613900139000".to_owned()],
        TENCENT_ID,
        TENCENT_KEY,
        Utc::now(),
    );
    tampered.body = String::from_utf8(tampered.body)
        .expect("JSON")
        .replace("1110", "1111")
        .into_bytes();
    let response = send(&tampered);
    assert_eq!(
        (response.status, error_code(&response)),
        (200, "AuthFailure.SignatureFailure".to_owned())
    );
    assert!(matches!(
        tencent::classify(200, &response.body),
        Outcome::Permanent(_)
    ));

    // A signed header changed after signing.
    let mut tampered = sign(
        &["+8613900139000".to_owned()],
        TENCENT_ID,
        TENCENT_KEY,
        Utc::now(),
    );
    // `host` is covered by the signature: the request reaches the same server under
    // another (valid) host name, as through a different regional endpoint.
    tampered.url = tampered
        .url
        .replace(tencent::HOST, "sms.ap-shanghai.tencentcloudapi.com");
    assert_eq!(error_code(&send(&tampered)), "AuthFailure.SignatureFailure");

    // An action the API does not have is refused before the signature is looked at.
    let mut wrong_action = sign(&one, TENCENT_ID, TENCENT_KEY, Utc::now());
    for (name, value) in &mut wrong_action.headers {
        if name.eq_ignore_ascii_case("x-tc-action") {
            *value = "SendSMS".to_owned();
        }
    }
    assert_eq!(error_code(&send(&wrong_action)), "InvalidAction");

    // Ten minutes old.
    let stale = sign(
        &one,
        TENCENT_ID,
        TENCENT_KEY,
        Utc::now() - chrono::Duration::minutes(10),
    );
    assert_eq!(error_code(&send(&stale)), "AuthFailure.SignatureExpire");

    // Unknown SecretId; wrong SecretKey.
    assert_eq!(
        error_code(&send(&sign(&one, "AKIDunknown", TENCENT_KEY, Utc::now()))),
        "AuthFailure.SecretIdNotFound"
    );
    assert_eq!(
        error_code(&send(&sign(&one, TENCENT_ID, "wrong", Utc::now()))),
        "AuthFailure.SignatureFailure"
    );

    // Signed consistently but with a date that is not the timestamp's UTC date (what a
    // signer using Beijing time does between 00:00 and 08:00).
    let mut local = sign(&one, TENCENT_ID, TENCENT_KEY, Utc::now());
    let tomorrow = (Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let incoming = crate::support::mocks::Incoming {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: String::new(),
        headers: local
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: local.body.clone(),
        received_at: Utc::now(),
    };
    let authorization = crate::support::mocks::tencent::authorization_for(
        &incoming,
        TENCENT_ID,
        TENCENT_KEY,
        &tomorrow,
        "sms",
        &["content-type", "host"],
    );
    for (name, value) in &mut local.headers {
        if name.eq_ignore_ascii_case("authorization") {
            *value = authorization.clone();
        }
    }
    let response = send(&local);
    assert_eq!(error_code(&response), "AuthFailure.SignatureFailure");
    assert!(
        json_of(&response)["Response"]["Error"]["Message"]
            .as_str()
            .is_some_and(|m| m.contains("UTC date")),
        "{}",
        response.text()
    );

    // Several numbers: one bad, one fine — a partial success, classified by the worst.
    let two = vec!["+8613700137000".to_owned(), "+86123".to_owned()];
    let response = send(&sign(&two, TENCENT_ID, TENCENT_KEY, Utc::now()));
    let set = json_of(&response)["Response"]["SendStatusSet"].clone();
    assert_eq!(set[0]["Code"], "Ok");
    assert_eq!(set[1]["Code"], "InvalidParameterValue.IncorrectPhoneNumber");
    assert!(matches!(
        tencent::classify(200, &response.body),
        Outcome::Permanent(_)
    ));

    // The first number again within 30 seconds: that number's entry is rate limited.
    let response = send(&sign(&one, TENCENT_ID, TENCENT_KEY, Utc::now()));
    let body = json_of(&response);
    assert_eq!(
        body["Response"]["SendStatusSet"][0]["Code"],
        "LimitExceeded.PhoneNumberThirtySecondLimit"
    );
    assert_eq!(
        tencent::classify(200, &response.body),
        Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    assert_eq!(mock.rate_limited_count(), 1);
    assert_eq!(mock.max_in_any_window(Duration::from_secs(60)), 2);
}

fn call<'a>(
    number: &'a str,
    params: &'a BTreeMap<String, String>,
) -> aliyun_voice::SingleCallByTts<'a> {
    aliyun_voice::SingleCallByTts {
        called_number: number,
        called_show_number: Some("4001112222"),
        tts_code: "TTS_10001",
        tts_param: params,
        play_times: Some(2),
        volume: Some(80),
        speed: None,
    }
}

/// Aliyun voice: the SMS gateway's checks (signature, nonce, AccessKey, action) in front
/// of SingleCallByTts's own — required parameters, one valid number, the caller ID, TTS
/// variables (strings, under 250 characters together, no URL), the call options — and
/// per-number flow control, each answered with the documented code and classified by
/// lookout as the service means it.
#[test]
fn aliyun_voice_mock_refuses_what_aliyun_refuses() {
    let mock = AliyunVoiceMock::start(ALIYUN_AK, ALIYUN_SECRET);
    let send = |request: &SignedRequest| {
        deliver(request, mock.addr(), SEND_TIMEOUT).expect("mock answers")
    };
    let code = |response: &Response| json_of(response)["Code"].as_str().unwrap_or("").to_owned();
    let kind = |response: &Response| aliyun_voice::classify(response.status, &response.body).kind();
    let mut params = BTreeMap::new();
    params.insert("name".to_owned(), "磁盘使用率过高".to_owned());
    params.insert("level".to_owned(), "critical".to_owned());
    let params = &params;
    let sign = |call: &aliyun_voice::SingleCallByTts<'_>, secret: &str| {
        aliyun_voice::sign_single_call_by_tts(
            aliyun_voice::DEFAULT_ENDPOINT,
            call,
            ALIYUN_AK,
            secret,
            Utc::now(),
            &nonce(),
        )
    };

    let good = sign(&call("13800138000", params), ALIYUN_SECRET);
    let response = send(&good);
    assert_eq!(
        (response.status, code(&response)),
        (200, "OK".to_owned()),
        "{}",
        response.text()
    );
    assert!(
        json_of(&response)["CallId"]
            .as_str()
            .is_some_and(|id| id.contains('^'))
    );
    assert_eq!(kind(&response), "delivered");
    let calls = mock.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].called_number, "13800138000");
    assert_eq!(calls[0].called_show_number.as_deref(), Some("4001112222"));
    assert_eq!(calls[0].tts_code, "TTS_10001");
    assert_eq!(calls[0].tts_param.as_ref(), Some(params));
    assert_eq!(
        (calls[0].play_times, calls[0].volume, calls[0].speed),
        (Some(2), Some(80), None)
    );

    // The gateway's checks, shared with SMS: replay, wrong secret, tampering, another API.
    assert_eq!(code(&send(&good)), "SignatureNonceUsed");
    let response = send(&sign(&call("13900139000", params), "wrong-secret"));
    assert_eq!(
        (response.status, code(&response)),
        (400, "SignatureDoesNotMatch".to_owned())
    );
    assert_eq!(kind(&response), "permanent");
    let mut tampered = sign(&call("13900139000", params), ALIYUN_SECRET);
    tampered.url = tampered.url.replace("13900139000", "13900139001");
    assert_eq!(code(&send(&tampered)), "SignatureDoesNotMatch");
    let numbers = vec!["13900139000".to_owned()];
    let sms = aliyun::sign_send_sms(
        aliyun::DEFAULT_ENDPOINT,
        &aliyun_sms(&numbers, params),
        ALIYUN_AK,
        ALIYUN_SECRET,
        Utc::now(),
        &nonce(),
    );
    let response = send(&sms);
    assert_eq!(
        (response.status, code(&response)),
        (404, "InvalidAction.NotFound".to_owned())
    );

    // SingleCallByTts's own checks, on queries signed correctly.
    let signed_query = |query: &BTreeMap<String, String>| {
        let nonce = nonce();
        aliyun::sign_request(
            &aliyun::Request {
                endpoint: aliyun_voice::DEFAULT_ENDPOINT,
                action: aliyun_voice::ACTION,
                version: aliyun_voice::VERSION,
                query,
                body: b"",
                content_type: None,
                date: Utc::now(),
                nonce: &nonce,
            },
            ALIYUN_AK,
            ALIYUN_SECRET,
        )
    };
    let with = |key: &str, value: Option<&str>| {
        let mut query = aliyun_voice::single_call_by_tts_query(&call("13700137000", params));
        match value {
            Some(value) => query.insert(key.to_owned(), value.to_owned()),
            None => query.remove(key),
        };
        send(&signed_query(&query))
    };
    let response = with("TtsCode", None);
    assert_eq!(
        (response.status, code(&response)),
        (400, "MissingTtsCode".to_owned())
    );
    assert_eq!(kind(&response), "permanent");
    for (key, value, want, outcome) in [
        (
            "CalledNumber",
            "1380013800a",
            "isv.MOBILE_NUMBER_ILLEGAL",
            "permanent",
        ),
        (
            "CalledNumber",
            "+8613700137000",
            "isv.MOBILE_NUMBER_ILLEGAL",
            "permanent",
        ),
        (
            "CalledShowNumber",
            "400-111",
            "isv.DISPLAY_NUMBER_ILLEGAL",
            "permanent",
        ),
        ("PlayTimes", "4", "isv.INVALID_PARAMETERS", "permanent"),
        ("Volume", "101", "isv.INVALID_PARAMETERS", "permanent"),
        ("Speed", "-501", "isv.INVALID_PARAMETERS", "permanent"),
        (
            "TtsParam",
            r#"{"name":95}"#,
            "isv.INVALID_PARAMETERS",
            "permanent",
        ),
        (
            "TtsParam",
            r#"{"name":"see https://grafana.example.com"}"#,
            "isv.PARAM_NOT_SUPPORT_URL",
            "permanent",
        ),
    ] {
        let response = with(key, Some(value));
        assert_eq!(
            (response.status, code(&response), kind(&response)),
            (200, want.to_owned(), outcome),
            "{key}={value}"
        );
    }
    // The variables together: 249 characters pass, 250 are too long.
    let long = |n: usize| json!({"name": "磁".repeat(n - 1), "level": "x"}).to_string();
    let response = with("TtsParam", Some(&long(250)));
    assert_eq!(code(&response), "isv.PARAM_LENGTH_LIMIT");
    assert_eq!(kind(&response), "too_long");
    assert_eq!(code(&with("TtsParam", Some(&long(249)))), "OK");

    // 13700137000 was just called: a second call within the minute is refused.
    let response = with("TtsParam", Some(&long(10)));
    assert_eq!(code(&response), "isv.BUSINESS_LIMIT_CONTROL");
    assert_eq!(json_of(&response)["Message"], "触发分钟级流控Permits:1");
    assert_eq!(
        aliyun_voice::classify(200, &response.body),
        Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert_eq!(mock.rate_limited_count(), 1);
    assert_eq!(mock.calls().len(), 2);
}

fn tts_voice<'a>(number: &'a str, params: &'a [String]) -> tencent_voice::SendTtsVoice<'a> {
    tencent_voice::SendTtsVoice {
        voice_sdk_app_id: "1400006666",
        template_id: "4356",
        template_params: params,
        called_number: number,
        play_times: Some(2),
    }
}

/// Tencent voice: the SMS gateway's TC3 checks with the service `vms`, in front of
/// SendTtsVoice's own — its parameters and their types, one E.164 number, `PlayTimes`,
/// the message length — and the per-number frequency policy, each classified by lookout
/// as the service means it.
#[test]
fn tencent_voice_mock_refuses_what_tencent_refuses() {
    let mock = TencentVoiceMock::start(TENCENT_ID, TENCENT_KEY);
    let send = |request: &SignedRequest| {
        deliver(request, mock.addr(), SEND_TIMEOUT).expect("mock answers")
    };
    let error_code = |response: &Response| {
        json_of(response)["Response"]["Error"]["Code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let kind =
        |response: &Response| tencent_voice::classify(response.status, &response.body).kind();
    let params = vec!["磁盘使用率过高".to_owned(), "db-1".to_owned()];
    let voice = |number: &'static str| tts_voice(number, &params);
    let sign = |voice: &tencent_voice::SendTtsVoice<'_>, id: &str, key: &str, region: &str| {
        tencent_voice::sign_send_tts_voice(tencent_voice::HOST, region, voice, id, key, Utc::now())
    };

    let response = send(&sign(
        &voice("+8613800138000"),
        TENCENT_ID,
        TENCENT_KEY,
        "ap-guangzhou",
    ));
    assert_eq!(response.status, 200);
    let body = json_of(&response);
    assert!(
        body["Response"]["SendStatus"]["CallId"].is_string(),
        "{body}"
    );
    assert!(body["Response"].get("Error").is_none());
    assert_eq!(kind(&response), "delivered");
    let calls = mock.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].called_number, "+8613800138000");
    assert_eq!(calls[0].voice_sdk_app_id, "1400006666");
    assert_eq!(calls[0].template_id, "4356");
    assert_eq!(calls[0].template_params, params);
    assert_eq!(calls[0].play_times, Some(2));

    // The gateway's checks, shared with SMS.
    let response = send(&sign(
        &voice("+8613900139000"),
        TENCENT_ID,
        "wrong",
        "ap-guangzhou",
    ));
    assert_eq!(error_code(&response), "AuthFailure.SignatureFailure");
    assert_eq!(kind(&response), "permanent");
    assert_eq!(
        error_code(&send(&sign(
            &voice("+8613900139000"),
            "AKIDunknown",
            TENCENT_KEY,
            "ap-guangzhou"
        ))),
        "AuthFailure.SecretIdNotFound"
    );
    assert_eq!(
        error_code(&send(&sign(
            &voice("+8613900139000"),
            TENCENT_ID,
            TENCENT_KEY,
            "ap-beijing"
        ))),
        "UnsupportedRegion"
    );
    let mut tampered = sign(
        &voice("+8613900139000"),
        TENCENT_ID,
        TENCENT_KEY,
        "ap-guangzhou",
    );
    tampered.body = String::from_utf8(tampered.body)
        .expect("JSON")
        .replace("4356", "4357")
        .into_bytes();
    assert_eq!(error_code(&send(&tampered)), "AuthFailure.SignatureFailure");
    let numbers = vec!["+8613900139000".to_owned()];
    let sms = tencent::sign_send_sms_to(
        tencent_voice::HOST,
        "ap-guangzhou",
        &tencent_sms(&numbers, &params),
        TENCENT_ID,
        TENCENT_KEY,
        Utc::now(),
    );
    assert_eq!(error_code(&send(&sms)), "InvalidAction");

    // A request signed for another service's scope (an SMS signer's) is refused.
    let signed_body = |service: &str, body: &Value| {
        let payload = body.to_string().into_bytes();
        tencent::sign_request(
            &tencent::Request {
                host: tencent_voice::HOST,
                service,
                action: tencent_voice::ACTION,
                version: tencent_voice::VERSION,
                region: Some("ap-guangzhou"),
                timestamp: Utc::now(),
                payload: &payload,
            },
            TENCENT_ID,
            TENCENT_KEY,
        )
    };
    let good_body = || {
        serde_json::from_slice::<Value>(&tencent_voice::send_tts_voice_payload(&voice(
            "+8613700137000",
        )))
        .expect("JSON")
    };
    assert_eq!(
        error_code(&send(&signed_body("sms", &good_body()))),
        "AuthFailure.InvalidAuthorization"
    );

    // SendTtsVoice's own checks, on bodies signed correctly.
    let with = |key: &str, value: Value| {
        let mut body = good_body();
        body[key] = value;
        send(&signed_body("vms", &body))
    };
    for (key, value, want, outcome) in [
        (
            "CalledNumber",
            json!("13700137000"),
            "InvalidParameterValue.CalledNumberVerifyFail",
            "permanent",
        ),
        (
            "CalledNumber",
            json!("+86123"),
            "InvalidParameterValue.CalledNumberVerifyFail",
            "permanent",
        ),
        (
            "PlayTimes",
            json!(4),
            "FailedOperation.FailResolvePacket",
            "permanent",
        ),
        ("PlayTimes", json!("2"), "InvalidParameter", "permanent"),
        (
            "TemplateParamSet",
            json!([1]),
            "InvalidParameter",
            "permanent",
        ),
        ("VoiceSdkAppid", json!(""), "MissingParameter", "permanent"),
        (
            "PhoneNumberSet",
            json!(["+8613700137000"]),
            "UnknownParameter",
            "permanent",
        ),
        (
            "TemplateParamSet",
            json!(["磁".repeat(340), "x".repeat(11)]),
            "InvalidParameterValue.ContentLengthLimit",
            "too_long",
        ),
    ] {
        let response = with(key, value.clone());
        assert_eq!(
            (error_code(&response), kind(&response)),
            (want.to_owned(), outcome),
            "{key}={value}"
        );
    }
    // 350 characters in all pass; a second call to that number within 30 s does not.
    let response = with(
        "TemplateParamSet",
        json!(["磁".repeat(340), "x".repeat(10)]),
    );
    assert!(
        json_of(&response)["Response"]["SendStatus"].is_object(),
        "{}",
        response.text()
    );
    let response = with("SessionContext", json!("again"));
    assert_eq!(
        error_code(&response),
        "LimitExceeded.DeliveryFrequencyLimit"
    );
    assert_eq!(
        tencent_voice::classify(200, &response.body),
        Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert_eq!(mock.rate_limited_count(), 1);
    assert_eq!(mock.calls().len(), 2);
}

/// The misbehaviour control itself: counts, until-reset, and what a hung request looks
/// like in the log.
#[test]
fn misbehave_counts_down_and_resets() {
    let mock = WeComMock::start(WECOM_KEY);
    let message = json!({"msgtype": "text", "text": {"content": "x"}});
    let send = |timeout: Duration| {
        deliver(
            &robot_request(mock.webhook_url(), &message),
            mock.addr(),
            timeout,
        )
    };

    mock.misbehave(Misbehave::Status(502), 2);
    let statuses: Vec<u16> = (0..3)
        .map(|_| send(SEND_TIMEOUT).expect("answered").status)
        .collect();
    assert_eq!(statuses, vec![502, 502, 200]);

    mock.misbehave(Misbehave::err_code(-1, "system busy"), Times::UntilReset);
    for _ in 0..3 {
        let response = send(SEND_TIMEOUT).expect("answered");
        assert!(matches!(
            wecom::classify(response.status, &response.body),
            Outcome::Transient(_)
        ));
    }
    mock.reset_misbehave();
    assert_eq!(send(SEND_TIMEOUT).expect("answered").status, 200);

    mock.misbehave(Misbehave::Hang, 1);
    let started = Instant::now();
    let error = send(Duration::from_millis(300)).expect_err("a hung request times out");
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let hung = mock.last().expect("logged");
    assert_eq!(hung.misbehaved, Some(Misbehave::Hang));
    assert!(hung.reply.is_none() && !hung.accepted);
    assert_eq!(
        send(SEND_TIMEOUT).expect("answered after the hang").status,
        200
    );

    mock.misbehave(Misbehave::Delay(Duration::from_millis(250)), 1);
    let started = Instant::now();
    assert_eq!(send(SEND_TIMEOUT).expect("answered").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));

    let log = mock.requests();
    assert_eq!(log.len(), 10);
    assert_eq!(
        log[0].path_and_query(),
        format!("/cgi-bin/webhook/send?key={WECOM_KEY}")
    );
    assert_eq!(log[0].json, Some(message.clone()));
    assert_eq!(mock.accepted().len(), 4);
}
