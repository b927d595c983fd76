//! Tencent Cloud voice notifications (VMS `SendTtsVoice`, version 2020-09-02) behind the
//! same verifying API 3.0 gateway as the SMS mock ([`Tc3Gateway`]: `TC3-HMAC-SHA256` with
//! the service `vms`, the five-minute window, the UTC date, the SecretId, the region),
//! with the voice API's own checks as documented in "指定模板发送语音通知"
//! (cloud.tencent.com/document/api/1128/51558), its FAQ and the SDK's error codes
//! (`tencentcloud/vms/v20200902/errorcodes.py`):
//!
//! * the body holds only `TemplateId`, `CalledNumber`, `VoiceSdkAppid` (required strings),
//!   `TemplateParamSet` (strings), `PlayTimes` (integer), `SessionContext` (string);
//! * `CalledNumber` is one E.164 number (`InvalidParameterValue.CalledNumberVerifyFail`);
//! * `PlayTimes` is 1, 2 or 3 (`FailedOperation.FailResolvePacket`, the "1004" error);
//! * the variables hold at most 350 characters together (the whole message's limit;
//!   `InvalidParameterValue.ContentLengthLimit`; a limit per variable can be set too);
//! * per called number: one call in 30 s, two in 10 minutes, five a day, the default
//!   policy for notifications (`LimitExceeded.DeliveryFrequencyLimit`).
//!
//! Success is `{"Response":{"SendStatus":{"CallId","SessionContext"},"RequestId"}}`;
//! every refusal is a request-level `Response.Error`, HTTP 200. VMS is served from
//! `ap-guangzhou`.

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::tencent::{JsonBody, Tc3Gateway, TcError, normalize_number, refuse};
use super::{Handled, Incoming, MockServer, RateLimiter, RateRule, Reply, Service, lock};

pub(crate) const SERVICE: &str = "vms";
pub(crate) const ACTION: &str = "SendTtsVoice";
pub(crate) const VERSION: &str = "2020-09-02";
/// The regions VMS is served from.
pub(crate) const REGIONS: [&str; 1] = ["ap-guangzhou"];
/// The variables of one call together hold at most this many characters.
pub(crate) const MAX_CONTENT_CHARS: usize = 350;
/// The frequency policy's code.
pub(crate) const LIMIT_CODE: &str = "LimitExceeded.DeliveryFrequencyLimit";

const CONTENT_TYPE: &str = "application/json";
const KNOWN_PARAMS: [&str; 6] = [
    "TemplateId",
    "CalledNumber",
    "VoiceSdkAppid",
    "TemplateParamSet",
    "PlayTimes",
    "SessionContext",
];

/// Tencent's default policy for voice notifications per called number.
pub(crate) fn default_rate_rules() -> Vec<RateRule> {
    let rule = |budget: usize, secs: u64, message: &str| RateRule {
        budget,
        window: Duration::from_secs(secs),
        block: Duration::ZERO,
        code: LIMIT_CODE.to_owned(),
        message: message.to_owned(),
    };
    vec![
        rule(1, 30, "同一被叫号码30秒内发送上限为1条"),
        rule(2, 600, "同一被叫号码10分钟内发送上限为2条"),
        rule(5, 86_400, "同一被叫号码1天内发送上限为5条"),
    ]
}

/// One call the mock placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TencentCall {
    /// E.164, as sent.
    pub(crate) called_number: String,
    pub(crate) voice_sdk_app_id: String,
    pub(crate) template_id: String,
    pub(crate) template_params: Vec<String>,
    pub(crate) play_times: Option<i64>,
    pub(crate) session_context: String,
    pub(crate) secret_id: String,
    pub(crate) call_id: String,
}

struct TencentVoice {
    gateway: Tc3Gateway,
    limiter: Mutex<RateLimiter>,
    max_param_chars: Mutex<Option<usize>>,
    calls: Mutex<Vec<TencentCall>>,
}

impl TencentVoice {
    fn place_call(&self, req: &Incoming, now: Instant) -> Result<Reply, Handled> {
        let refused = |error: TcError| refuse(&error);
        let secret_id = self.gateway.authenticate(req).map_err(refused)?;
        let body = JsonBody::parse(&req.body, &KNOWN_PARAMS).map_err(refused)?;
        let template_id = body.string("TemplateId", true).map_err(refused)?;
        let called_number = body.string("CalledNumber", true).map_err(refused)?;
        let voice_sdk_app_id = body.string("VoiceSdkAppid", true).map_err(refused)?;
        let template_params = body
            .strings("TemplateParamSet")
            .map_err(refused)?
            .unwrap_or_default();
        let play_times = body.integer("PlayTimes").map_err(refused)?;
        let session_context = body.string("SessionContext", false).map_err(refused)?;
        if !called_number.starts_with('+') || normalize_number(&called_number).is_none() {
            return Err(refuse(&TcError::new(
                "InvalidParameterValue.CalledNumberVerifyFail",
                "被叫手机号码格式校验失败。",
            )));
        }
        if play_times.is_some_and(|n| !(1..=3).contains(&n)) {
            return Err(refuse(&TcError::new(
                "FailedOperation.FailResolvePacket",
                "后端请求包解析失败：PlayTimes 只能取1、2或3。",
            )));
        }
        let total: usize = template_params.iter().map(|p| p.chars().count()).sum();
        let per_variable = *lock(&self.max_param_chars);
        if total > MAX_CONTENT_CHARS
            || per_variable
                .is_some_and(|max| template_params.iter().any(|p| p.chars().count() > max))
        {
            return Err(refuse(&TcError::new(
                "InvalidParameterValue.ContentLengthLimit",
                "语音模板中单个变量长度超过限制。",
            )));
        }
        let mut limiter = lock(&self.limiter);
        if let Err(rule) = limiter.check(&called_number, now) {
            return Err(Handled::rate_limited(
                &rule.code,
                super::tencent::error_reply(&rule.code, &rule.message),
            ));
        }
        limiter.record(&called_number, now);
        drop(limiter);
        let call_id = super::request_id().to_lowercase();
        lock(&self.calls).push(TencentCall {
            called_number,
            voice_sdk_app_id,
            template_id,
            template_params,
            play_times,
            session_context: session_context.clone(),
            secret_id,
            call_id: call_id.clone(),
        });
        Ok(Reply::json(
            200,
            CONTENT_TYPE,
            &json!({"Response": {
                "SendStatus": {"CallId": call_id, "SessionContext": session_context},
                "RequestId": super::request_id().to_lowercase(),
            }}),
        ))
    }
}

impl Service for TencentVoice {
    fn handle(&self, req: &Incoming, now: Instant) -> Handled {
        match self.place_call(req, now) {
            Ok(reply) => Handled::accepted(reply),
            Err(refused) => refused,
        }
    }

    fn error_reply(&self, code: &str, message: &str) -> Reply {
        super::tencent::error_reply(code, message)
    }
}

/// A running Tencent Cloud voice mock; see the module doc. Derefs to its [`MockServer`].
pub(crate) struct TencentVoiceMock {
    server: MockServer,
    service: Arc<TencentVoice>,
}

impl TencentVoiceMock {
    /// A gateway that knows one SecretId/SecretKey pair.
    pub(crate) fn start(secret_id: &str, secret_key: &str) -> TencentVoiceMock {
        let service = Arc::new(TencentVoice {
            gateway: Tc3Gateway::new(SERVICE, ACTION, VERSION, &REGIONS, secret_id, secret_key),
            limiter: Mutex::new(RateLimiter::new(default_rate_rules())),
            max_param_chars: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
        });
        let server = MockServer::start("tencent-voice", Arc::clone(&service) as Arc<dyn Service>);
        TencentVoiceMock { server, service }
    }

    /// The endpoint to use instead of `vms.tencentcloudapi.com`: `127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        self.server.addr().to_string()
    }

    /// One per-number tier instead of Tencent's three: `budget` per `window`, then
    /// blocked for `block`. Resets the rate history.
    pub(crate) fn set_rate_limit(&self, budget: usize, window: Duration, block: Duration) {
        let rule = RateRule {
            budget,
            window,
            block,
            ..default_rate_rules().swap_remove(0)
        };
        lock(&self.service.limiter).set_rules(vec![rule]);
    }

    /// The longest variable accepted (`None`, the default: only the total is limited).
    pub(crate) fn set_max_param_chars(&self, max: Option<usize>) {
        *lock(&self.service.max_param_chars) = max;
    }

    /// The calls placed, oldest first.
    pub(crate) fn calls(&self) -> Vec<TencentCall> {
        lock(&self.service.calls).clone()
    }
}

impl Deref for TencentVoiceMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}
