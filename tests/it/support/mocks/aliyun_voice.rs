//! Aliyun voice notifications (`dyvmsapi`, `SingleCallByTts`, version 2017-05-25) behind
//! the same verifying OpenAPI gateway as the SMS mock ([`AcsGateway`]: the V3 signature
//! `ACS3-HMAC-SHA256`, the date window, the AccessKey, the nonce), with the voice API's
//! own checks as documented in "SingleCallByTts" (help.aliyun.com/zh/vms/developer-reference/
//! api-dyvmsapi-2017-05-25-singlecallbytts) and its error codes ("错误码",
//! help.aliyun.com/zh/vms/the-error-code-list):
//!
//! * `CalledNumber` and `TtsCode` are required (`MissingCalledNumber`, `MissingTtsCode`,
//!   gateway refusals); one called number, digits without `+`
//!   (`isv.MOBILE_NUMBER_ILLEGAL`);
//!   `CalledShowNumber`, when sent, digits (`isv.DISPLAY_NUMBER_ILLEGAL`).
//! * `TtsParam`, when sent, a JSON object of strings (`isv.INVALID_PARAMETERS`), the
//!   variables less than 250 characters together (`isv.PARAM_LENGTH_LIMIT`; a limit per
//!   variable can be set for tests) and without URLs (`isv.PARAM_NOT_SUPPORT_URL`).
//! * `PlayTimes` 1–3, `Volume` 0–100, `Speed` -500–500, integers (`isv.INVALID_PARAMETERS`).
//! * Per called number 1 call a minute, 5 an hour, 20 a day
//!   (`isv.BUSINESS_LIMIT_CONTROL`, "触发分钟级流控Permits:1" …).
//!
//! Business answers are HTTP 200 `{"Code","Message","RequestId"}`; success adds `CallId`.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::aliyun::{
    AcsGateway, admit_numbers, business_limit, flow_control, string_object, valid_number,
};
use super::{Handled, Incoming, MockServer, RateLimiter, RateRule, Reply, Service, lock};

pub(crate) const ACTION: &str = "SingleCallByTts";
pub(crate) const VERSION: &str = "2017-05-25";
/// The variables of one call together stay under this many characters.
pub(crate) const MAX_PARAMS_CHARS: usize = 250;

const CONTENT_TYPE: &str = "application/json;charset=utf-8";

/// Aliyun's per-number flow control for voice: a minute, an hour and 24 hours.
pub(crate) fn default_rate_rules() -> Vec<RateRule> {
    flow_control([1, 5, 20])
}

/// One call the mock placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AliyunCall {
    pub(crate) called_number: String,
    pub(crate) called_show_number: Option<String>,
    pub(crate) tts_code: String,
    pub(crate) tts_param: Option<BTreeMap<String, String>>,
    pub(crate) play_times: Option<i64>,
    pub(crate) volume: Option<i64>,
    pub(crate) speed: Option<i64>,
    pub(crate) access_key_id: String,
    pub(crate) call_id: String,
}

struct AliyunVoice {
    gateway: AcsGateway,
    limiter: Mutex<RateLimiter>,
    max_param_chars: Mutex<Option<usize>>,
    calls: Mutex<Vec<AliyunCall>>,
}

/// A business refusal with `code`.
fn refuse(code: &str, message: &str) -> Handled {
    Handled::rejected(code, AcsGateway::business(code, message))
}

/// `value` as an integer within `range`, or the refusal naming `name`.
fn integer(
    name: &str,
    value: Option<String>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, Handled> {
    let Some(text) = value else {
        return Ok(None);
    };
    match text.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(refuse(
            "isv.INVALID_PARAMETERS",
            &format!("参数异常: {name}={text}"),
        )),
    }
}

impl AliyunVoice {
    /// `TtsParam`: a JSON object of strings, short enough, without URLs.
    fn check_tts_param(&self, raw: &str) -> Result<BTreeMap<String, String>, Handled> {
        let params = string_object(raw)
            .ok_or_else(|| refuse("isv.INVALID_PARAMETERS", "参数异常: TtsParam"))?;
        let total: usize = params.values().map(|v| v.chars().count()).sum();
        let per_variable = *lock(&self.max_param_chars);
        let too_long =
            per_variable.is_some_and(|max| params.values().any(|v| v.chars().count() > max));
        if total >= MAX_PARAMS_CHARS || too_long {
            return Err(refuse("isv.PARAM_LENGTH_LIMIT", "参数长度受限"));
        }
        if params
            .values()
            .any(|v| v.contains("http://") || v.contains("https://"))
        {
            return Err(refuse("isv.PARAM_NOT_SUPPORT_URL", "变量不支持URL参数"));
        }
        Ok(params)
    }

    fn place_call(&self, req: &Incoming, now: Instant) -> Result<Reply, Handled> {
        let access_key_id = self
            .gateway
            .authenticate(req)
            .map_err(|error| self.gateway.refuse(req, &error))?;
        let params = AcsGateway::params(req);
        let called_number = params
            .required("CalledNumber")
            .map_err(|error| self.gateway.refuse(req, &error))?;
        let tts_code = params
            .required("TtsCode")
            .map_err(|error| self.gateway.refuse(req, &error))?;
        // Digits only: mainland numbers as they are, others as country code and number.
        if !valid_number(&called_number) || called_number.starts_with('+') {
            return Err(refuse(
                "isv.MOBILE_NUMBER_ILLEGAL",
                &format!("号码格式非法: {called_number}"),
            ));
        }
        let called_show_number = params.get("CalledShowNumber");
        if called_show_number
            .as_deref()
            .is_some_and(|n| !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(refuse("isv.DISPLAY_NUMBER_ILLEGAL", "号显不合法"));
        }
        let tts_param = match params.get("TtsParam") {
            Some(raw) => Some(self.check_tts_param(&raw)?),
            None => None,
        };
        let play_times = integer("PlayTimes", params.get("PlayTimes"), 1..=3)?;
        let volume = integer("Volume", params.get("Volume"), 0..=100)?;
        let speed = integer("Speed", params.get("Speed"), -500..=500)?;
        admit_numbers(&self.limiter, std::slice::from_ref(&called_number), now)?;
        let call_id = format!(
            "{}^{}",
            fastrand::u64(100_000_000_000..999_999_999_999),
            fastrand::u64(100_000_000..999_999_999)
        );
        lock(&self.calls).push(AliyunCall {
            called_number,
            called_show_number,
            tts_code,
            tts_param,
            play_times,
            volume,
            speed,
            access_key_id,
            call_id: call_id.clone(),
        });
        Ok(Reply::json(
            200,
            CONTENT_TYPE,
            &json!({"Code": "OK", "Message": "OK", "CallId": call_id, "RequestId": super::request_id()}),
        ))
    }
}

impl Service for AliyunVoice {
    fn handle(&self, req: &Incoming, now: Instant) -> Handled {
        match self.place_call(req, now) {
            Ok(reply) => Handled::accepted(reply),
            Err(refused) => refused,
        }
    }

    fn error_reply(&self, code: &str, message: &str) -> Reply {
        self.gateway.error_reply(code, message)
    }
}

/// A running Aliyun voice mock; see the module doc. Derefs to its [`MockServer`].
pub(crate) struct AliyunVoiceMock {
    server: MockServer,
    service: Arc<AliyunVoice>,
}

impl AliyunVoiceMock {
    /// A gateway that knows one AccessKey pair.
    pub(crate) fn start(access_key_id: &str, access_key_secret: &str) -> AliyunVoiceMock {
        let service = Arc::new(AliyunVoice {
            gateway: AcsGateway::new(
                "dyvmsapi.aliyuncs.com",
                "Dyvmsapi",
                ACTION,
                VERSION,
                access_key_id,
                access_key_secret,
            ),
            limiter: Mutex::new(RateLimiter::new(default_rate_rules())),
            max_param_chars: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
        });
        let server = MockServer::start("aliyun-voice", Arc::clone(&service) as Arc<dyn Service>);
        AliyunVoiceMock { server, service }
    }

    /// The endpoint to configure instead of `dyvmsapi.aliyuncs.com`: `127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        self.server.addr().to_string()
    }

    /// One per-number tier instead of Aliyun's three: `budget` per `window`, then blocked
    /// for `block`. Resets the rate history.
    pub(crate) fn set_rate_limit(&self, budget: usize, window: Duration, block: Duration) {
        lock(&self.service.limiter).set_rules(vec![business_limit(budget, window, block)]);
    }

    /// The longest variable accepted (`None`, the default: only the total is limited).
    pub(crate) fn set_max_param_chars(&self, max: Option<usize>) {
        *lock(&self.service.max_param_chars) = max;
    }

    /// The calls placed, oldest first.
    pub(crate) fn calls(&self) -> Vec<AliyunCall> {
        lock(&self.service.calls).clone()
    }
}

impl Deref for AliyunVoiceMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}
