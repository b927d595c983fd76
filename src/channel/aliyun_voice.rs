//! Aliyun voice notifications: Dyvmsapi `SingleCallByTts` (API version 2017-05-25), one
//! call per number that reads an approved TTS template aloud, signed with the same V3
//! `ACS3-HMAC-SHA256` signer as Aliyun SMS ([`aliyun_sms::sign_request`]).
//!
//! ```yaml
//! oncall-voice:
//!   type: aliyun_voice
//!   access_key_id: ${ALIYUN_AK}
//!   access_key_secret: ${ALIYUN_SK}       # or access_key_secret_file
//!   called_show_number: '4001112222'     # dedicated mode only; omit in the shared (公共) mode
//!   tts_code: TTS_10001
//!   tts_params: { name: '{{ alertname }}', level: '{{ severity }}' }
//!   phone_numbers: ['13800000000']
//!   play_times: 2                        # optional: 1–3 (Aliyun's default 3)
//!   volume: 100                          # optional: 0–100
//!   speed: 0                             # optional: -500–500
//! ```
//!
//! # SingleCallByTts
//!
//! Sources, read 2026: "SingleCallByTts - 发送语音验证码或文本转语音类型的语音通知"
//! (help.aliyun.com/zh/vms/developer-reference/api-dyvmsapi-2017-05-25-singlecallbytts)
//! and the official SDK (`alibabacloud-dyvmsapi20170525`, `single_call_by_tts_with_options`):
//! an RPC-style `POST /` to `dyvmsapi.aliyuncs.com` with `CalledNumber` (one number,
//! digits only: mainland numbers as they are, others as country code and number),
//! `CalledShowNumber` (dedicated mode), `TtsCode`, `TtsParam` (a JSON object of strings),
//! `PlayTimes` (1–3), `Volume` (0–100) and `Speed` (-500–500) in the query string and no
//! body. Success is `{"Code": "OK", "CallId": …}`. Aliyun throttles one called number to
//! 1 call a minute, 5 an hour and 20 a day; the variables together must stay under 250
//! characters and hold no URL. lookout renders each variable to at most
//! [`PARAM_MAX_CHARS`] characters: a call reads a short alert name and level aloud, not
//! the alert's text.
//!
//! # Replies
//!
//! Source: "错误码" of the voice service (help.aliyun.com/zh/vms/the-error-code-list) and
//! the OpenAPI gateway's common errors. The codes are the ones [`aliyun_sms::classify`]
//! already knows, with the same meaning, so that function classifies voice replies too:
//!
//! | Code | Outcome |
//! |---|---|
//! | `OK` | delivered |
//! | `isv.BUSINESS_LIMIT_CONTROL` (per-number flow control) | rate limited: 60 s, or 1 h for the hourly and daily levels |
//! | `Throttling`, `Throttling.*` (API call rate, e.g. `Throttling.User`) | rate limited, outbox default |
//! | `isv.PARAM_LENGTH_LIMIT` | too long |
//! | `isp.SYSTEM_ERROR`, `InternalError`, `ServiceUnavailable`, `SignatureNonceUsed`, any code with a 5xx | transient |
//! | everything else — `InvalidAccessKeyId.*`, `SignatureDoesNotMatch`, `isv.TTS_TEMPLATE_ILLEGAL`, `isv.DISPLAY_NUMBER_ILLEGAL`, `isv.TEMPLATE_MISSING_PARAMETERS`, `isv.BLACK_KEY_CONTROL_LIMIT`, `isv.PARAM_NOT_SUPPORT_URL`, `isv.INVALID_PARAMETERS`, `isv.MOBILE_NUMBER_ILLEGAL`, `isv.OUT_OF_SERVICE`, `isv.PRODUCT_UN_SUBSCRIPT`, `isv.ACCOUNT_ABNORMAL`, `isp.RAM_PERMISSION_DENY` … | permanent |

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::aliyun_sms::{self, Request, sign_request};
use super::outcome::Outcome;
use super::sign::SignedRequest;
use super::{ChannelKind, Compose, Defaults, Delivery, Error, Message, Shown, http, sms};
use crate::configfile::{Checker, Secret, join};

/// Each TTS variable at most this many characters (read aloud, it must stay short).
pub const PARAM_MAX_CHARS: usize = sms::VOICE_PARAM_MAX_CHARS;
/// The voice endpoint for mainland China.
pub const DEFAULT_ENDPOINT: &str = "dyvmsapi.aliyuncs.com";
/// The SingleCallByTts action name.
pub const ACTION: &str = "SingleCallByTts";
/// The API version SingleCallByTts is called with.
pub const VERSION: &str = "2017-05-25";
/// `PlayTimes`: how often the message is read in one call.
pub const PLAY_TIMES: RangeInclusive<i64> = 1..=3;
/// `Volume`.
pub const VOLUME: RangeInclusive<i64> = 0..=100;
/// `Speed`.
pub const SPEED: RangeInclusive<i64> = -500..=500;

/// `type: aliyun_voice` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<String>,
    pub access_key_secret_file: Option<String>,
    pub called_show_number: Option<String>,
    pub tts_code: Option<String>,
    #[serde(default)]
    pub tts_params: BTreeMap<String, String>,
    #[serde(default)]
    pub phone_numbers: Vec<String>,
    pub play_times: Option<i64>,
    pub volume: Option<i64>,
    pub speed: Option<i64>,
}

/// Aliyun voice calls to a list of numbers, one SingleCallByTts call per number.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: Secret,
    /// The number shown to the callee (dedicated mode); `None` in the shared mode.
    pub called_show_number: Option<String>,
    pub tts_code: String,
    /// Variable name → minijinja template over the notification.
    pub tts_params: BTreeMap<String, String>,
    pub phone_numbers: Vec<String>,
    /// The call's options, each sent only when set (else Aliyun's default applies).
    pub play_times: Option<i64>,
    pub volume: Option<i64>,
    pub speed: Option<i64>,
}

/// One message's payload: the number and the rendered variables (the SMS shape, so
/// `render` shows both alike).
#[derive(Debug, Serialize, Deserialize)]
struct Call {
    phone: String,
    params: BTreeMap<String, String>,
}

impl ChannelKind for Config {
    const TYPE: &'static str = "aliyun_voice";
    const DEFAULTS: Defaults = Defaults::VOICE;
    /// The spoken text is the approved template; `tts_params` take the place of `template`.
    const DELIVERY_KEYS: &'static [&'static str] = sms::DELIVERY_KEYS;
    type Raw = Raw;
    type Transport = reqwest::Client;

    fn validate(raw: &Raw, path: &str, check: &mut Checker<'_>) -> Option<Self> {
        let endpoint = check.url(
            path,
            "endpoint",
            Some(
                raw.endpoint
                    .as_deref()
                    .unwrap_or("https://dyvmsapi.aliyuncs.com"),
            ),
        );
        let secret = check.secret(
            path,
            "access_key_secret",
            raw.access_key_secret.as_ref(),
            raw.access_key_secret_file.as_ref(),
        );
        if secret.is_none() {
            check.error(
                path,
                "missing key `access_key_secret` or `access_key_secret_file`",
            );
        }
        sms::check_numbers(path, &raw.phone_numbers, check);
        for number in raw.phone_numbers.iter().filter(|n| n.starts_with('+')) {
            check.error(
                &join(path, "phone_numbers"),
                format!(
                    "`{number}`: Aliyun calls numbers without `+` (mainland numbers as they are, others as country code and number)"
                ),
            );
        }
        if let Some(shown) = &raw.called_show_number {
            if shown.trim().is_empty() || !shown.chars().all(|c| c.is_ascii_digit()) {
                check.error(
                    &join(path, "called_show_number"),
                    format!("`{shown}` is not a phone number (digits only)"),
                );
            }
        }
        for (key, value, range) in [
            ("play_times", raw.play_times, &PLAY_TIMES),
            ("volume", raw.volume, &VOLUME),
            ("speed", raw.speed, &SPEED),
        ] {
            if let Some(value) = value {
                check.number(&join(path, key), range, value);
            }
        }
        let access_key_id = check.required(path, "access_key_id", raw.access_key_id.as_deref());
        let tts_code = check.required(path, "tts_code", raw.tts_code.as_deref());
        Some(Self {
            endpoint: endpoint?.expose().to_owned(),
            access_key_id: access_key_id?.to_owned(),
            access_key_secret: secret?,
            called_show_number: raw.called_show_number.clone(),
            tts_code: tts_code?.to_owned(),
            tts_params: raw.tts_params.clone(),
            phone_numbers: raw.phone_numbers.clone(),
            play_times: raw.play_times,
            volume: raw.volume,
            speed: raw.speed,
        })
    }

    fn targets(&self) -> Vec<String> {
        self.phone_numbers
            .iter()
            .map(|phone| sms::target(Self::TYPE, phone))
            .collect()
    }

    fn compose(&self, compose: &Compose<'_>) -> Result<Vec<Message>, Error> {
        let params = self
            .tts_params
            .iter()
            .map(|(name, template)| {
                let value = sms::param(name, template, compose.view, PARAM_MAX_CHARS)?;
                Ok((name.clone(), value))
            })
            .collect::<Result<BTreeMap<_, _>, Error>>()?;
        Ok(sms::messages(
            compose,
            Self::TYPE,
            &self.phone_numbers,
            |phone| Call {
                phone: phone.to_owned(),
                params: params.clone(),
            },
        ))
    }

    fn describe(&self, message: &Message) -> Shown {
        sms::show(message, "TtsParam")
    }

    fn transport(&self, delivery: &Delivery) -> Result<reqwest::Client, String> {
        http::client(delivery)
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        message: &Message,
        now: DateTime<Utc>,
    ) -> Outcome {
        let call = match sms::payload::<Call>(message, Self::TYPE) {
            Ok(call) => call,
            Err(outcome) => return outcome,
        };
        let single = SingleCallByTts {
            called_number: &call.phone,
            called_show_number: self.called_show_number.as_deref(),
            tts_code: &self.tts_code,
            tts_param: &call.params,
            play_times: self.play_times,
            volume: self.volume,
            speed: self.speed,
        };
        let nonce = format!("{:032x}", fastrand::u128(..));
        let signed = sign_single_call_by_tts(
            &self.endpoint,
            &single,
            &self.access_key_id,
            self.access_key_secret.expose(),
            now,
            &nonce,
        );
        http::send_signed(client, signed, classify).await
    }
}

/// The parameters of one SingleCallByTts call.
#[derive(Debug, Clone, Copy)]
pub struct SingleCallByTts<'a> {
    /// The one number called: a mainland number as it is, others with the country code.
    pub called_number: &'a str,
    /// The number shown to the callee (dedicated mode); omitted when `None`.
    pub called_show_number: Option<&'a str>,
    /// The approved TTS template, e.g. `TTS_10001`.
    pub tts_code: &'a str,
    /// Template variables; omitted from the query when empty.
    pub tts_param: &'a BTreeMap<String, String>,
    pub play_times: Option<i64>,
    pub volume: Option<i64>,
    pub speed: Option<i64>,
}

/// The SingleCallByTts query parameters, each optional one only when set.
pub fn single_call_by_tts_query(call: &SingleCallByTts<'_>) -> BTreeMap<String, String> {
    let mut query = BTreeMap::new();
    query.insert("CalledNumber".to_owned(), call.called_number.to_owned());
    if let Some(shown) = call.called_show_number {
        query.insert("CalledShowNumber".to_owned(), shown.to_owned());
    }
    query.insert("TtsCode".to_owned(), call.tts_code.to_owned());
    if !call.tts_param.is_empty() {
        query.insert(
            "TtsParam".to_owned(),
            aliyun_sms::string_object(call.tts_param),
        );
    }
    for (name, value) in [
        ("PlayTimes", call.play_times),
        ("Volume", call.volume),
        ("Speed", call.speed),
    ] {
        if let Some(value) = value {
            query.insert(name.to_owned(), value.to_string());
        }
    }
    query
}

/// Signs a SingleCallByTts call to `endpoint` (a host or `scheme://host[:port]`).
pub fn sign_single_call_by_tts(
    endpoint: &str,
    call: &SingleCallByTts<'_>,
    access_key_id: &str,
    access_key_secret: &str,
    date: DateTime<Utc>,
    nonce: &str,
) -> SignedRequest {
    let query = single_call_by_tts_query(call);
    let req = Request {
        endpoint,
        action: ACTION,
        version: VERSION,
        query: &query,
        body: &[],
        content_type: None,
        date,
        nonce,
    };
    sign_request(&req, access_key_id, access_key_secret)
}

/// Classifies a SingleCallByTts reply; see the module doc for the table.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    aliyun_sms::classify(status, body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn call<'a>(params: &'a BTreeMap<String, String>) -> SingleCallByTts<'a> {
        SingleCallByTts {
            called_number: "13800138000",
            called_show_number: Some("4001112222"),
            tts_code: "TTS_10001",
            tts_param: params,
            play_times: Some(2),
            volume: None,
            speed: Some(-100),
        }
    }

    #[test]
    fn the_query_holds_the_set_parameters_only() {
        let mut params = BTreeMap::new();
        params.insert("name".to_owned(), "磁盘 告警".to_owned());
        let query = single_call_by_tts_query(&call(&params));
        assert_eq!(
            query.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "CalledNumber",
                "CalledShowNumber",
                "PlayTimes",
                "Speed",
                "TtsCode",
                "TtsParam"
            ]
        );
        assert_eq!(query["TtsParam"], r#"{"name":"磁盘 告警"}"#);
        assert_eq!(query["Speed"], "-100");

        let empty = BTreeMap::new();
        let bare = SingleCallByTts {
            called_show_number: None,
            play_times: None,
            speed: None,
            ..call(&empty)
        };
        assert_eq!(
            single_call_by_tts_query(&bare)
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["CalledNumber", "TtsCode"]
        );
    }

    #[test]
    fn signed_with_the_voice_action_and_version() {
        let params = BTreeMap::new();
        let signed = sign_single_call_by_tts(
            DEFAULT_ENDPOINT,
            &call(&params),
            "LTAI-test",
            "secret",
            Utc::now(),
            "nonce",
        );
        assert_eq!(signed.header("x-acs-action"), Some("SingleCallByTts"));
        assert_eq!(signed.header("x-acs-version"), Some("2017-05-25"));
        assert!(signed.url.starts_with(
            "https://dyvmsapi.aliyuncs.com/?CalledNumber=13800138000&CalledShowNumber=4001112222"
        ));
        assert!(signed.body.is_empty());
        assert!(
            signed
                .header("authorization")
                .is_some_and(|a| a.starts_with("ACS3-HMAC-SHA256 Credential=LTAI-test,"))
        );
    }

    #[test]
    fn classify_table() {
        let cases: Vec<(u16, &str, Outcome)> = vec![
            (
                200,
                r#"{"Code":"OK","Message":"OK","CallId":"116012854210^102813","RequestId":"r"}"#,
                Outcome::Delivered,
            ),
            (
                200,
                r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控Permits:1"}"#,
                Outcome::RateLimited {
                    retry_after: Some(Duration::from_secs(60)),
                },
            ),
            (
                200,
                r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发小时级流控Permits:5"}"#,
                Outcome::RateLimited {
                    retry_after: Some(Duration::from_secs(3600)),
                },
            ),
            (
                400,
                r#"{"Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#,
                Outcome::RateLimited { retry_after: None },
            ),
            (
                200,
                r#"{"Code":"isv.PARAM_LENGTH_LIMIT","Message":"参数长度受限"}"#,
                Outcome::TooLong("isv.PARAM_LENGTH_LIMIT: 参数长度受限".into()),
            ),
            (
                200,
                r#"{"Code":"isp.SYSTEM_ERROR","Message":"系统错误"}"#,
                Outcome::Transient("isp.SYSTEM_ERROR: 系统错误".into()),
            ),
            (
                503,
                r#"{"Code":"ServiceUnavailable","Message":"busy"}"#,
                Outcome::Transient("ServiceUnavailable: busy".into()),
            ),
            (
                400,
                r#"{"Code":"SignatureDoesNotMatch","Message":"m"}"#,
                Outcome::Permanent("SignatureDoesNotMatch: m".into()),
            ),
            (
                404,
                r#"{"Code":"InvalidAccessKeyId.NotFound","Message":"m"}"#,
                Outcome::Permanent("InvalidAccessKeyId.NotFound: m".into()),
            ),
        ];
        for (status, body, want) in cases {
            assert_eq!(classify(status, body.as_bytes()), want, "{status} {body}");
        }
        for code in [
            "isv.TTS_TEMPLATE_ILLEGAL",
            "isv.DISPLAY_NUMBER_ILLEGAL",
            "isv.TEMPLATE_MISSING_PARAMETERS",
            "isv.BLACK_KEY_CONTROL_LIMIT",
            "isv.PARAM_NOT_SUPPORT_URL",
            "isv.INVALID_PARAMETERS",
            "isv.MOBILE_NUMBER_ILLEGAL",
            "isv.OUT_OF_SERVICE",
            "isv.PRODUCT_UN_SUBSCRIPT",
            "isv.ACCOUNT_ABNORMAL",
            "isp.RAM_PERMISSION_DENY",
        ] {
            let body = format!(r#"{{"Code":"{code}","Message":"m"}}"#);
            assert_eq!(
                classify(200, body.as_bytes()),
                Outcome::Permanent(format!("{code}: m")),
                "{code}"
            );
        }
        assert_eq!(
            classify(502, b"<html>bad gateway</html>").kind(),
            "transient"
        );
    }
}
