//! Tencent Cloud voice notifications: VMS `SendTtsVoice` (API version 2020-09-02), one
//! call per number that reads an approved template aloud, signed with the same
//! `TC3-HMAC-SHA256` signer as Tencent SMS ([`tencent_sms::sign_request`]) under the
//! service `vms`.
//!
//! ```yaml
//! oncall-voice-tc:
//!   type: tencent_voice
//!   region: ap-guangzhou
//!   secret_id: ${TENCENT_SECRET_ID}
//!   secret_key: ${TENCENT_SECRET_KEY}     # or secret_key_file
//!   voice_sdk_app_id: '1400000000'
//!   template_id: '1234567'
//!   template_params: ['{{ alertname }}']
//!   phone_numbers: ['+8613800000000']     # E.164
//!   play_times: 2                         # optional: 1–3 (Tencent's default 2)
//! ```
//!
//! # SendTtsVoice
//!
//! Sources, read 2026: "指定模板发送语音通知" (cloud.tencent.com/document/api/1128/51558)
//! and the official SDK (`tencentcloud-sdk-python-vms`, `vms_client.py`, `models.py`):
//! `POST /` to `vms.tencentcloudapi.com` with the JSON body `{"TemplateId", "CalledNumber"
//! (one number, E.164), "VoiceSdkAppid", "TemplateParamSet" (strings), "PlayTimes" (1–3),
//! "SessionContext"}` and `X-TC-Action: SendTtsVoice`, `X-TC-Version: 2020-09-02`. Success
//! is `{"Response": {"SendStatus": {"CallId", "SessionContext"}, "RequestId"}}`. The whole
//! spoken text is at most 350 characters; lookout renders each variable to at most
//! [`PARAM_MAX_CHARS`] characters. Tencent's default frequency policy per called number
//! is one call in 30 s, two in 10 minutes, five a day for notifications.
//!
//! # Replies
//!
//! Source: the SDK's `tencentcloud/vms/v20200902/errorcodes.py` and the common error
//! codes. Every reply is HTTP 200; a failure has `Response.Error.Code`, mapped by
//! [`tencent_sms`]'s table where the codes are the same:
//!
//! | Code | Outcome |
//! |---|---|
//! | no `Error`, a `SendStatus` | delivered |
//! | `LimitExceeded.DeliveryFrequencyLimit` (the per-number policy) | rate limited, 60 s |
//! | `RequestLimitExceeded*` (API call rate) | rate limited, outbox default |
//! | `InvalidParameterValue.ContentLengthLimit` (a variable too long) | too long |
//! | `InternalError`, `InternalError.*` (upstream errors and timeouts), `FailedOperation.AccessUpstreamTimeout`, `ResourceUnavailable*` | transient |
//! | everything else — `AuthFailure.*`, `FailedOperation.TemplateIncorrectOrUnapproved`, `FailedOperation.ContainSensitiveWord`, `FailedOperation.InsufficientBalanceInVoicePackage`, `FailedOperation.PhonenumberUnappliedOrExpired`, `InvalidParameterValue.CalledNumberVerifyFail`, `InvalidParameterValue.SdkAppidNotExist`, `UnauthorizedOperation.*`, `UnsupportedOperation`, `MissingParameter` … | permanent |

use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::outcome::{Outcome, snippet};
use super::sign::SignedRequest;
use super::tencent_sms::{self, Request, sign_request};
use super::{ChannelKind, Compose, Defaults, Delivery, Error, Message, Shown, http, sms};
use crate::configfile::{Checker, Secret, join};

/// Each template variable at most this many characters (read aloud, it must stay short).
pub const PARAM_MAX_CHARS: usize = sms::VOICE_PARAM_MAX_CHARS;
/// The VMS endpoint.
pub const HOST: &str = "vms.tencentcloudapi.com";
/// The service name in the credential scope.
pub const SERVICE: &str = "vms";
/// The SendTtsVoice action name.
pub const ACTION: &str = "SendTtsVoice";
/// The API version SendTtsVoice is called with.
pub const VERSION: &str = "2020-09-02";
/// `PlayTimes`: how often the message is read in one call.
pub const PLAY_TIMES: RangeInclusive<i64> = 1..=3;

/// `type: tencent_voice` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub secret_id: Option<String>,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<String>,
    pub voice_sdk_app_id: Option<String>,
    pub template_id: Option<String>,
    #[serde(default)]
    pub template_params: Vec<String>,
    #[serde(default)]
    pub phone_numbers: Vec<String>,
    pub play_times: Option<i64>,
}

/// Tencent Cloud voice calls to a list of numbers, one SendTtsVoice call per number.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub region: String,
    pub secret_id: String,
    pub secret_key: Secret,
    pub voice_sdk_app_id: String,
    pub template_id: String,
    /// minijinja templates over the notification, in the template's order.
    pub template_params: Vec<String>,
    /// E.164 numbers, e.g. `+8613800000000`.
    pub phone_numbers: Vec<String>,
    /// Sent only when set (else Tencent's default applies).
    pub play_times: Option<i64>,
}

/// One message's payload: the number and the rendered variables (the SMS shape).
#[derive(Debug, Serialize, Deserialize)]
struct Call {
    phone: String,
    params: Vec<String>,
}

impl ChannelKind for Config {
    const TYPE: &'static str = "tencent_voice";
    const DEFAULTS: Defaults = Defaults::VOICE;
    /// The spoken text is the approved template; `template_params` take the place of
    /// `template`.
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
                    .unwrap_or("https://vms.tencentcloudapi.com"),
            ),
        );
        let secret = check.secret(
            path,
            "secret_key",
            raw.secret_key.as_ref(),
            raw.secret_key_file.as_ref(),
        );
        if secret.is_none() {
            check.error(path, "missing key `secret_key` or `secret_key_file`");
        }
        sms::check_numbers(path, &raw.phone_numbers, check);
        for number in &raw.phone_numbers {
            if !number.starts_with('+') {
                check.error(
                    &join(path, "phone_numbers"),
                    format!("`{number}` must be in E.164 form, e.g. +8613800000000"),
                );
            }
        }
        if let Some(play_times) = raw.play_times {
            check.number(&join(path, "play_times"), &PLAY_TIMES, play_times);
        }
        let secret_id = check.required(path, "secret_id", raw.secret_id.as_deref());
        let voice_sdk_app_id =
            check.required(path, "voice_sdk_app_id", raw.voice_sdk_app_id.as_deref());
        let template_id = check.required(path, "template_id", raw.template_id.as_deref());
        Some(Self {
            endpoint: endpoint?.expose().to_owned(),
            region: raw
                .region
                .clone()
                .unwrap_or_else(|| "ap-guangzhou".to_owned()),
            secret_id: secret_id?.to_owned(),
            secret_key: secret?,
            voice_sdk_app_id: voice_sdk_app_id?.to_owned(),
            template_id: template_id?.to_owned(),
            template_params: raw.template_params.clone(),
            phone_numbers: raw.phone_numbers.clone(),
            play_times: raw.play_times,
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
            .template_params
            .iter()
            .enumerate()
            .map(|(i, template)| {
                sms::param(&i.to_string(), template, compose.view, PARAM_MAX_CHARS)
            })
            .collect::<Result<Vec<_>, Error>>()?;
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
        sms::show(message, "TemplateParamSet")
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
        let voice = SendTtsVoice {
            voice_sdk_app_id: &self.voice_sdk_app_id,
            template_id: &self.template_id,
            template_params: &call.params,
            called_number: &call.phone,
            play_times: self.play_times,
        };
        let signed = sign_send_tts_voice(
            &self.endpoint,
            &self.region,
            &voice,
            &self.secret_id,
            self.secret_key.expose(),
            now,
        );
        http::send_signed(client, signed, classify).await
    }
}

/// The parameters of one SendTtsVoice call.
#[derive(Debug, Clone, Copy)]
pub struct SendTtsVoice<'a> {
    /// The voice application id (`VoiceSdkAppid`), e.g. `1400006666`.
    pub voice_sdk_app_id: &'a str,
    /// The approved template id.
    pub template_id: &'a str,
    /// Template variables in template order (`TemplateParamSet`).
    pub template_params: &'a [String],
    /// The one number called, E.164 (`CalledNumber`).
    pub called_number: &'a str,
    /// `PlayTimes`, omitted when `None`.
    pub play_times: Option<i64>,
}

/// The SendTtsVoice JSON body.
pub fn send_tts_voice_payload(voice: &SendTtsVoice<'_>) -> Vec<u8> {
    let mut body = serde_json::json!({
        "CalledNumber": voice.called_number,
        "TemplateId": voice.template_id,
        "TemplateParamSet": voice.template_params,
        "VoiceSdkAppid": voice.voice_sdk_app_id,
    });
    if let Some(play_times) = voice.play_times {
        body["PlayTimes"] = play_times.into();
    }
    body.to_string().into_bytes()
}

/// Signs a SendTtsVoice call to `endpoint` (a host or `scheme://host[:port]`) in `region`.
pub fn sign_send_tts_voice(
    endpoint: &str,
    region: &str,
    voice: &SendTtsVoice<'_>,
    secret_id: &str,
    secret_key: &str,
    timestamp: DateTime<Utc>,
) -> SignedRequest {
    let payload = send_tts_voice_payload(voice);
    let req = Request {
        host: endpoint,
        service: SERVICE,
        action: ACTION,
        version: VERSION,
        region: Some(region),
        timestamp,
        payload: &payload,
    };
    sign_request(&req, secret_id, secret_key)
}

/// Maps one VMS error code; see the module doc.
fn classify_code(code: &str, message: &str) -> Outcome {
    match code {
        "FailedOperation.AccessUpstreamTimeout" => Outcome::Transient(format!("{code}: {message}")),
        _ => tencent_sms::classify_code(code, message),
    }
}

/// Classifies a SendTtsVoice reply; see the module doc for the table.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    match tencent_sms::response(status, body, classify_code) {
        Ok(response) if response.get("SendStatus").is_some_and(|s| s.is_object()) => {
            Outcome::Delivered
        }
        Ok(_) => Outcome::Transient(format!(
            "reply without Error or SendStatus: {}",
            snippet(body)
        )),
        Err(outcome) => outcome,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn voice(params: &[String]) -> SendTtsVoice<'_> {
        SendTtsVoice {
            voice_sdk_app_id: "1400006666",
            template_id: "4356",
            template_params: params,
            called_number: "+8613800138000",
            play_times: Some(2),
        }
    }

    #[test]
    fn signed_for_vms_with_the_voice_body() {
        let params = vec!["磁盘告警".to_owned()];
        let req = sign_send_tts_voice(
            HOST,
            "ap-guangzhou",
            &voice(&params),
            "AKIDtest",
            "key",
            DateTime::from_timestamp(1_551_113_065, 0).unwrap(),
        );
        assert_eq!(req.url, "https://vms.tencentcloudapi.com/");
        assert_eq!(req.header("x-tc-action"), Some("SendTtsVoice"));
        assert_eq!(req.header("x-tc-version"), Some("2020-09-02"));
        assert_eq!(req.header("x-tc-region"), Some("ap-guangzhou"));
        assert!(
            req.header("authorization")
                .unwrap()
                .contains("Credential=AKIDtest/2019-02-25/vms/tc3_request, ")
        );
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "CalledNumber": "+8613800138000", "TemplateId": "4356",
                "TemplateParamSet": ["磁盘告警"], "VoiceSdkAppid": "1400006666", "PlayTimes": 2
            })
        );
        let none = send_tts_voice_payload(&SendTtsVoice {
            play_times: None,
            ..voice(&params)
        });
        assert!(!String::from_utf8(none).unwrap().contains("PlayTimes"));
    }

    fn error(code: &str) -> String {
        serde_json::json!({"Response": {"Error": {"Code": code, "Message": "msg"}, "RequestId": "r"}})
            .to_string()
    }

    #[test]
    fn classify_table() {
        let ok = r#"{"Response":{"SendStatus":{"CallId":"12582bce-4eb8","SessionContext":"sc-t"},"RequestId":"r"}}"#;
        let cases: Vec<(u16, String, Outcome)> = vec![
            (200, ok.to_owned(), Outcome::Delivered),
            (
                200,
                error("LimitExceeded.DeliveryFrequencyLimit"),
                Outcome::RateLimited {
                    retry_after: Some(Duration::from_secs(60)),
                },
            ),
            (
                200,
                error("RequestLimitExceeded"),
                Outcome::RateLimited { retry_after: None },
            ),
            (
                200,
                error("InvalidParameterValue.ContentLengthLimit"),
                Outcome::TooLong("InvalidParameterValue.ContentLengthLimit: msg".into()),
            ),
            (
                200,
                error("InternalError.UpstreamError"),
                Outcome::Transient("InternalError.UpstreamError: msg".into()),
            ),
            (
                200,
                error("FailedOperation.AccessUpstreamTimeout"),
                Outcome::Transient("FailedOperation.AccessUpstreamTimeout: msg".into()),
            ),
            (
                502,
                "<html>bad gateway</html>".to_owned(),
                Outcome::Transient("http 502: <html>bad gateway</html>".into()),
            ),
            (
                200,
                "not json".to_owned(),
                Outcome::Transient("reply without a Response: not json".into()),
            ),
            (
                200,
                r#"{"Response":{"RequestId":"r"}}"#.to_owned(),
                Outcome::Transient(
                    r#"reply without Error or SendStatus: {"Response":{"RequestId":"r"}}"#.into(),
                ),
            ),
        ];
        for (status, body, want) in cases {
            assert_eq!(classify(status, body.as_bytes()), want, "{status} {body}");
        }
        for code in [
            "AuthFailure.SignatureFailure",
            "AuthFailure.SecretIdNotFound",
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "FailedOperation.ContainSensitiveWord",
            "FailedOperation.InsufficientBalanceInVoicePackage",
            "FailedOperation.PhonenumberUnappliedOrExpired",
            "InvalidParameterValue.CalledNumberVerifyFail",
            "InvalidParameterValue.SdkAppidNotExist",
            "UnauthorizedOperation.VoiceSdkAppidVerifyFail",
            "UnauthorizedOperation.ServiceSuspendDueToArrears",
            "UnsupportedOperation",
        ] {
            assert_eq!(
                classify(200, error(code).as_bytes()),
                Outcome::Permanent(format!("{code}: msg")),
                "{code}"
            );
        }
    }
}
