//! Tencent Cloud SMS (`SendSms`, version 2021-01-11) behind a mock API 3.0 gateway that
//! verifies `TC3-HMAC-SHA256` as documented in "签名方法 v3"
//! (cloud.tencent.com/document/api/382/52071 and the same page under every product).
//!
//! The gateway rebuilds the canonical request from what it received:
//!
//! ```text
//! CanonicalRequest = METHOD \n / \n query (empty for POST) \n CanonicalHeaders \n SignedHeaders \n hex(sha256(payload))
//! StringToSign     = "TC3-HMAC-SHA256" \n X-TC-Timestamp \n Date/service/tc3_request \n hex(sha256(CanonicalRequest))
//! SecretSigning    = HMAC(HMAC(HMAC("TC3" + SecretKey, Date), service), "tc3_request")
//! Signature        = hex(HMAC(SecretSigning, StringToSign))
//! ```
//!
//! Canonical header names *and values* are lowercased and trimmed, sorted by name;
//! `content-type` and `host` must be signed. `X-TC-Timestamp` must be within five minutes
//! of the gateway's clock and `Date` must be its UTC date; the service must be `sms`.
//!
//! Every reply is HTTP 200 with `Content-Type: application/json` (the SDK reads errors only
//! with that exact type): a request-level failure is `{"Response":{"Error":{"Code",
//! "Message"},"RequestId"}}`, otherwise `Response.SendStatusSet[]` has one entry per number
//! whose `Code` is `Ok` or the reason that number failed. Per-number frequency limits
//! default to Tencent's: 1 per 30 s, 5 an hour, 10 a day
//! (`LimitExceeded.PhoneNumberThirtySecondLimit`, `…OneHourLimit`, `…DailyLimit`).
//! Template variables are unlimited by default (enterprise accounts); individual accounts
//! are limited to 12 characters (`set_max_param_chars(Some(12))`).
//!
//! The gateway — key pairs, the checks above, refusals as `Response.Error` — is
//! [`Tc3Gateway`] and the body's type checks are [`JsonBody`]; the voice mock
//! (`tencent_voice.rs`) uses both in front of `SendTtsVoice` with the service `vms`.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Handled, Incoming, MockServer, RateLimiter, RateRule, Reply, Service, lock};

pub(crate) const ALGORITHM: &str = "TC3-HMAC-SHA256";
pub(crate) const SERVICE: &str = "sms";
pub(crate) const ACTION: &str = "SendSms";
pub(crate) const VERSION: &str = "2021-01-11";
/// How far `X-TC-Timestamp` may be from the gateway's clock, in seconds.
pub(crate) const TIMESTAMP_TOLERANCE_SECS: i64 = 300;
/// Most numbers one SendSms call takes.
pub(crate) const MAX_NUMBERS: usize = 200;
/// The regions SMS is served from.
pub(crate) const REGIONS: [&str; 3] = ["ap-guangzhou", "ap-beijing", "ap-nanjing"];

const CONTENT_TYPE: &str = "application/json";
const KNOWN_PARAMS: [&str; 8] = [
    "PhoneNumberSet",
    "SmsSdkAppId",
    "TemplateId",
    "SignName",
    "TemplateParamSet",
    "ExtendCode",
    "SessionContext",
    "SenderId",
];

/// Tencent's default per-number limits: 30 seconds, an hour, a day.
pub(crate) fn default_rate_rules() -> Vec<RateRule> {
    let rule = |budget: usize, secs: u64, code: &str, message: &str| RateRule {
        budget,
        window: Duration::from_secs(secs),
        block: Duration::ZERO,
        code: code.to_owned(),
        message: message.to_owned(),
    };
    vec![
        rule(
            1,
            30,
            "LimitExceeded.PhoneNumberThirtySecondLimit",
            "单个手机号30秒内下发短信条数超过设定的上限",
        ),
        rule(
            5,
            3600,
            "LimitExceeded.PhoneNumberOneHourLimit",
            "单个手机号1小时内下发短信条数超过设定的上限",
        ),
        rule(
            10,
            86_400,
            "LimitExceeded.PhoneNumberDailyLimit",
            "单个手机号日下发短信条数超过设定的上限",
        ),
    ]
}

/// A request-level refusal: `Response.Error.Code` and `.Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TcError {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl TcError {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> TcError {
        TcError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// The parts of `Authorization: TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request,
/// SignedHeaders=…, Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tc3Authorization {
    pub(crate) secret_id: String,
    pub(crate) date: String,
    pub(crate) service: String,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
}

impl Tc3Authorization {
    /// `Date/service/tc3_request`.
    pub(crate) fn scope(&self) -> String {
        format!("{}/{}/tc3_request", self.date, self.service)
    }
}

/// Parses an `Authorization` value; `None` when it is not a well-formed TC3 one.
pub(crate) fn parse_authorization(value: &str) -> Option<Tc3Authorization> {
    let rest = value.trim().strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return None,
        }
    }
    let parts: Vec<&str> = credential?.split('/').collect();
    let [secret_id, date, service, "tc3_request"] = parts.as_slice() else {
        return None;
    };
    Some(Tc3Authorization {
        secret_id: (*secret_id).to_owned(),
        date: (*date).to_owned(),
        service: (*service).to_owned(),
        signed_headers: signed?
            .split(';')
            .filter(|n| !n.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
        signature: signature.filter(|s| !s.is_empty())?.to_owned(),
    })
}

/// The canonical request for `req` under `signed_headers`: names and values lowercased
/// and trimmed, sorted by name; the query is empty for POST; the payload hash is of the
/// body received (of the empty string for GET).
pub(crate) fn canonical_request(
    req: &Incoming,
    signed_headers: &[String],
) -> Result<String, TcError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for name in signed_headers {
        let Some(value) = req.header(name) else {
            return Err(TcError::new(
                "AuthFailure.InvalidAuthorization",
                format!("signed header `{name}` was not sent"),
            ));
        };
        headers.push((name.trim().to_lowercase(), value.trim().to_lowercase()));
    }
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    let (query, payload): (&str, &[u8]) = if req.method == "GET" {
        (&req.query, b"")
    } else {
        ("", &req.body)
    };
    Ok(format!(
        "{}\n/\n{query}\n{canonical_headers}\n{}\n{}",
        req.method,
        names.join(";"),
        super::sha256_hex(payload)
    ))
}

/// `TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hex(sha256(canonical))}`.
pub(crate) fn string_to_sign(timestamp: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        super::sha256_hex(canonical.as_bytes())
    )
}

/// `SecretSigning` for one date and service.
pub(crate) fn signing_key(secret_key: &str, date: &str, service: &str) -> Vec<u8> {
    let secret_date = super::hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let secret_service = super::hmac_sha256(&secret_date, service.as_bytes());
    super::hmac_sha256(&secret_service, b"tc3_request")
}

/// `hex(HMAC(SecretSigning, StringToSign))`.
pub(crate) fn signature(key: &[u8], string_to_sign: &str) -> String {
    hex::encode(super::hmac_sha256(key, string_to_sign.as_bytes()))
}

/// The mock's own signer, for tests that need a request lookout's signer would never
/// produce (a local-time date, say): the `Authorization` value for `req` as it stands.
pub(crate) fn authorization_for(
    req: &Incoming,
    secret_id: &str,
    secret_key: &str,
    date: &str,
    service: &str,
    signed_headers: &[&str],
) -> String {
    let names: Vec<String> = signed_headers.iter().map(|n| (*n).to_owned()).collect();
    let canonical = canonical_request(req, &names).unwrap_or_default();
    let scope = format!("{date}/{service}/tc3_request");
    let timestamp = req.header("x-tc-timestamp").unwrap_or_default();
    let sts = string_to_sign(timestamp, &scope, &canonical);
    let mut sorted = names.clone();
    sorted.sort();
    format!(
        "{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={}, Signature={}",
        sorted.join(";"),
        signature(&signing_key(secret_key, date, service), &sts)
    )
}

/// Recomputes the signature of `req` with `secret_key` and compares.
pub(crate) fn verify_signature(
    req: &Incoming,
    auth: &Tc3Authorization,
    secret_key: &str,
) -> Result<(), TcError> {
    let canonical = canonical_request(req, &auth.signed_headers)?;
    let timestamp = req.header("x-tc-timestamp").unwrap_or_default();
    let sts = string_to_sign(timestamp, &auth.scope(), &canonical);
    let key = signing_key(secret_key, &auth.date, &auth.service);
    if signature(&key, &sts) == auth.signature {
        Ok(())
    } else {
        Err(TcError::new(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ))
    }
}

/// Checks `X-TC-Timestamp` (five minutes) and that the credential's date is its UTC date.
pub(crate) fn check_timestamp(
    value: Option<&str>,
    credential_date: &str,
    now: DateTime<Utc>,
) -> Result<(), TcError> {
    let Some(ts) = value.and_then(|v| v.trim().parse::<i64>().ok()) else {
        return Err(TcError::new(
            "MissingParameter",
            "The request is missing a required parameter `Timestamp`.",
        ));
    };
    if (now.timestamp() - ts).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(TcError::new(
            "AuthFailure.SignatureExpire",
            "签名过期。Timestamp 和服务器时间相差不得超过五分钟，请检查本地时间是否和标准时间同步。",
        ));
    }
    let utc_date = DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    if utc_date != credential_date {
        return Err(TcError::new(
            "AuthFailure.SignatureFailure",
            format!(
                "The date in Credential ({credential_date}) is not the UTC date of X-TC-Timestamp ({utc_date})."
            ),
        ));
    }
    Ok(())
}

/// The number in E.164 form (`13800138000` → `+8613800138000`), or `None` when it is not
/// a phone number.
pub(crate) fn normalize_number(number: &str) -> Option<String> {
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = number.strip_prefix('+') {
        let mainland_ok = rest
            .strip_prefix("86")
            .is_none_or(|m| m.len() == 11 && m.starts_with('1'));
        return ((6..=16).contains(&rest.len()) && digits_ok(rest) && mainland_ok)
            .then(|| number.to_owned());
    }
    (number.len() == 11 && number.starts_with('1') && digits_ok(number))
        .then(|| format!("+86{number}"))
}

/// One SendSms body, checked: `(numbers as sent, app id, sign name, template id, params)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendSmsBody {
    pub(crate) phone_numbers: Vec<String>,
    pub(crate) sdk_app_id: String,
    pub(crate) sign_name: String,
    pub(crate) template_id: String,
    pub(crate) template_params: Vec<String>,
}

/// Checks the body's parameters; request-level errors only (per-number problems are
/// answered in `SendStatusSet`).
pub(crate) fn parse_body(
    body: &[u8],
    max_param_chars: Option<usize>,
) -> Result<SendSmsBody, TcError> {
    let body = JsonBody::parse(body, &KNOWN_PARAMS)?;
    let phone_numbers = body
        .strings("PhoneNumberSet")?
        .ok_or_else(|| JsonBody::missing("PhoneNumberSet"))?;
    if phone_numbers.is_empty() {
        return Err(TcError::new(
            "MissingParameter.EmptyPhoneNumberSet",
            "传入的号码列表为空，请确认您的参数中是否传入号码。",
        ));
    }
    if phone_numbers.len() > MAX_NUMBERS {
        return Err(TcError::new(
            "LimitExceeded.PhoneNumberCountLimit",
            "调用接口单次提交的手机号个数超过200个。",
        ));
    }
    let template_params = body.strings("TemplateParamSet")?.unwrap_or_default();
    if let Some(max) = max_param_chars {
        if template_params.iter().any(|p| p.chars().count() > max) {
            return Err(TcError::new(
                "InvalidParameterValue.TemplateParameterLengthLimit",
                format!("单个模板变量字符数超过{max}个"),
            ));
        }
    }
    Ok(SendSmsBody {
        phone_numbers,
        sdk_app_id: body.string("SmsSdkAppId", true)?,
        sign_name: body.string("SignName", false)?,
        template_id: body.string("TemplateId", true)?,
        template_params,
    })
}

/// An API 3.0 JSON body, checked the way the gateway checks it before the product sees
/// it: valid JSON, an object, only the action's parameters, each of its declared type.
pub(crate) struct JsonBody(serde_json::Map<String, Value>);

impl JsonBody {
    /// Parses `body`, refusing a parameter not in `known`.
    pub(crate) fn parse(body: &[u8], known: &[&str]) -> Result<JsonBody, TcError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| TcError::new("InvalidParameter", "The request body is not valid JSON."))?;
        let Value::Object(object) = value else {
            return Err(TcError::new(
                "InvalidParameter",
                "The request body is not a JSON object.",
            ));
        };
        if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(TcError::new(
                "UnknownParameter",
                format!("The parameter `{unknown}` is not recognized."),
            ));
        }
        Ok(JsonBody(object))
    }

    pub(crate) fn missing(name: &str) -> TcError {
        TcError::new(
            "MissingParameter",
            format!("The request is missing a required parameter `{name}`."),
        )
    }

    fn wrong_type(name: &str) -> TcError {
        TcError::new(
            "InvalidParameter",
            format!("The type of parameter `{name}` is not correct."),
        )
    }

    /// A string parameter; a required one must be there and non-empty, an optional one
    /// reads as empty when absent.
    pub(crate) fn string(&self, name: &str, required: bool) -> Result<String, TcError> {
        match self.0.get(name) {
            None if required => Err(JsonBody::missing(name)),
            None => Ok(String::new()),
            Some(Value::String(s)) if required && s.is_empty() => Err(JsonBody::missing(name)),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(JsonBody::wrong_type(name)),
        }
    }

    /// An array-of-strings parameter, `None` when absent.
    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, TcError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| JsonBody::wrong_type(name))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(JsonBody::wrong_type(name)),
        }
    }

    /// An integer parameter, `None` when absent.
    pub(crate) fn integer(&self, name: &str) -> Result<Option<i64>, TcError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| JsonBody::wrong_type(name)),
        }
    }
}

/// One number the mock delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TencentSms {
    /// E.164, as the reply reports it.
    pub(crate) phone_number: String,
    pub(crate) sdk_app_id: String,
    pub(crate) sign_name: String,
    pub(crate) template_id: String,
    pub(crate) template_params: Vec<String>,
    pub(crate) secret_id: String,
}

/// The API 3.0 gateway in front of one product's one action: it knows the key pairs,
/// checks action, version, the TC3 signature (scope service, UTC date, five-minute
/// window) and region, and answers refusals as `Response.Error`. Shared by the SMS
/// (`SendSms`) and voice (`SendTtsVoice`, `tencent_voice.rs`) mocks.
pub(crate) struct Tc3Gateway {
    keys: Mutex<HashMap<String, String>>,
    service: &'static str,
    action: &'static str,
    version: &'static str,
    regions: &'static [&'static str],
}

impl Tc3Gateway {
    /// A gateway for `action` of `service` and `version` in `regions`, knowing one key pair.
    pub(crate) fn new(
        service: &'static str,
        action: &'static str,
        version: &'static str,
        regions: &'static [&'static str],
        secret_id: &str,
        secret_key: &str,
    ) -> Tc3Gateway {
        Tc3Gateway {
            keys: Mutex::new(HashMap::from([(
                secret_id.to_owned(),
                secret_key.to_owned(),
            )])),
            service,
            action,
            version,
            regions,
        }
    }

    /// Another key pair the gateway accepts.
    pub(crate) fn add_secret(&self, secret_id: &str, secret_key: &str) {
        lock(&self.keys).insert(secret_id.to_owned(), secret_key.to_owned());
    }

    /// Action, version, signature and region; the SecretId on success.
    pub(crate) fn authenticate(&self, req: &Incoming) -> Result<String, TcError> {
        if req.path != "/" || req.method != "POST" {
            return Err(TcError::new(
                "UnsupportedOperation",
                "The mock gateway serves POST / only.",
            ));
        }
        let action = req.header("x-tc-action").unwrap_or_default();
        if action != self.action {
            return Err(TcError::new(
                "InvalidAction",
                format!("The action `{action}` is not found."),
            ));
        }
        if req.header("x-tc-version") != Some(self.version) {
            return Err(TcError::new(
                "NoSuchVersion",
                "The requested API version does not exist or has been taken offline.",
            ));
        }
        let auth = req
            .header("authorization")
            .and_then(parse_authorization)
            .ok_or_else(|| {
                TcError::new(
                    "AuthFailure.InvalidAuthorization",
                    "The Authorization header is not a TC3-HMAC-SHA256 one.",
                )
            })?;
        check_timestamp(req.header("x-tc-timestamp"), &auth.date, req.received_at)?;
        if auth.service != self.service {
            return Err(TcError::new(
                "AuthFailure.InvalidAuthorization",
                format!("The service in Credential must be `{}`.", self.service),
            ));
        }
        for required in ["content-type", "host"] {
            if !auth.signed_headers.iter().any(|h| h == required) {
                return Err(TcError::new(
                    "AuthFailure.InvalidAuthorization",
                    format!("SignedHeaders must include `{required}`."),
                ));
            }
        }
        let secret_key = lock(&self.keys).get(&auth.secret_id).cloned().ok_or_else(|| {
            TcError::new(
                "AuthFailure.SecretIdNotFound",
                "密钥不存在。请在控制台检查密钥是否已被删除或者禁用，如状态正常，请检查密钥是否填写正确，注意前后不得有空格。",
            )
        })?;
        verify_signature(req, &auth, &secret_key)?;
        match req.header("x-tc-region") {
            None | Some("") => Err(TcError::new(
                "MissingParameter",
                "The request is missing a required parameter `Region`.",
            )),
            Some(region) if !self.regions.contains(&region) => Err(TcError::new(
                "UnsupportedRegion",
                format!("{} does not support the region `{region}`.", self.action),
            )),
            Some(_) => Ok(auth.secret_id),
        }
    }
}

struct Tencent {
    gateway: Tc3Gateway,
    limiter: Mutex<RateLimiter>,
    max_param_chars: Mutex<Option<usize>>,
    sent: Mutex<Vec<TencentSms>>,
}

/// `{"Response":{"Error":{"Code","Message"},"RequestId"}}`, HTTP 200.
pub(crate) fn error_reply(code: &str, message: &str) -> Reply {
    Reply::json(
        200,
        CONTENT_TYPE,
        &json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": super::request_id().to_lowercase()}}),
    )
}

/// A request-level refusal.
pub(crate) fn refuse(error: &TcError) -> Handled {
    Handled::rejected(&error.code, error_reply(&error.code, &error.message))
}

impl Service for Tencent {
    fn handle(&self, req: &Incoming, now: Instant) -> Handled {
        let secret_id = match self.gateway.authenticate(req) {
            Ok(id) => id,
            Err(error) => return refuse(&error),
        };
        let body = match parse_body(&req.body, *lock(&self.max_param_chars)) {
            Ok(body) => body,
            Err(error) => return refuse(&error),
        };
        let mut limiter = lock(&self.limiter);
        let mut statuses = Vec::new();
        let mut first_error: Option<String> = None;
        let mut any_ok = false;
        let mut any_limited = false;
        for number in &body.phone_numbers {
            let outcome = match normalize_number(number) {
                None => Err((
                    "InvalidParameterValue.IncorrectPhoneNumber".to_owned(),
                    "手机号格式错误".to_owned(),
                )),
                Some(e164) => match limiter.check(&e164, now) {
                    Err(rule) => {
                        any_limited = true;
                        Err((rule.code, rule.message))
                    }
                    Ok(()) => {
                        limiter.record(&e164, now);
                        Ok(e164)
                    }
                },
            };
            let entry = match outcome {
                Ok(e164) => {
                    any_ok = true;
                    lock(&self.sent).push(TencentSms {
                        phone_number: e164.clone(),
                        sdk_app_id: body.sdk_app_id.clone(),
                        sign_name: body.sign_name.clone(),
                        template_id: body.template_id.clone(),
                        template_params: body.template_params.clone(),
                        secret_id: secret_id.clone(),
                    });
                    json!({
                        "SerialNo": format!("2640:{}", fastrand::u64(1_000_000_000_000_000_000..10_000_000_000_000_000_000)),
                        "PhoneNumber": e164,
                        "Fee": 1,
                        "SessionContext": "",
                        "Code": "Ok",
                        "Message": "send success",
                        "IsoCode": if e164.starts_with("+86") { "CN" } else { "" },
                    })
                }
                Err((code, message)) => {
                    first_error.get_or_insert_with(|| code.clone());
                    json!({
                        "SerialNo": "",
                        "PhoneNumber": normalize_number(number).unwrap_or_else(|| number.clone()),
                        "Fee": 0,
                        "SessionContext": "",
                        "Code": code,
                        "Message": message,
                        "IsoCode": "",
                    })
                }
            };
            statuses.push(entry);
        }
        drop(limiter);
        let reply = Reply::json(
            200,
            CONTENT_TYPE,
            &json!({"Response": {"SendStatusSet": statuses, "RequestId": super::request_id().to_lowercase()}}),
        );
        Handled {
            reply,
            accepted: any_ok,
            code: first_error,
            rate_limited: any_limited,
        }
    }

    fn error_reply(&self, code: &str, message: &str) -> Reply {
        error_reply(code, message)
    }
}

/// A running Tencent Cloud SMS mock; see the module doc. Derefs to its [`MockServer`].
pub(crate) struct TencentSmsMock {
    server: MockServer,
    service: Arc<Tencent>,
}

impl TencentSmsMock {
    /// A gateway that knows one SecretId/SecretKey pair.
    pub(crate) fn start(secret_id: &str, secret_key: &str) -> TencentSmsMock {
        let service = Arc::new(Tencent {
            gateway: Tc3Gateway::new(SERVICE, ACTION, VERSION, &REGIONS, secret_id, secret_key),
            limiter: Mutex::new(RateLimiter::new(default_rate_rules())),
            max_param_chars: Mutex::new(None),
            sent: Mutex::new(Vec::new()),
        });
        let server = MockServer::start("tencent-sms", Arc::clone(&service) as Arc<dyn Service>);
        TencentSmsMock { server, service }
    }

    /// The endpoint to use instead of `sms.tencentcloudapi.com`: `127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        self.server.addr().to_string()
    }

    /// Another key pair the gateway accepts.
    pub(crate) fn add_secret(&self, secret_id: &str, secret_key: &str) {
        self.service.gateway.add_secret(secret_id, secret_key);
    }

    /// One per-number tier instead of Tencent's three: `budget` per `window`, then blocked
    /// for `block`, answered with `LimitExceeded.PhoneNumberThirtySecondLimit`. Resets the
    /// rate history.
    pub(crate) fn set_rate_limit(&self, budget: usize, window: Duration, block: Duration) {
        let rule = RateRule {
            budget,
            window,
            block,
            ..default_rate_rules().swap_remove(0)
        };
        lock(&self.service.limiter).set_rules(vec![rule]);
    }

    /// Any per-number tiers. Resets the rate history.
    pub(crate) fn set_rate_rules(&self, rules: Vec<RateRule>) {
        lock(&self.service.limiter).set_rules(rules);
    }

    /// The longest template variable accepted (`None`: no limit, as for enterprise
    /// accounts; individual accounts have 12).
    pub(crate) fn set_max_param_chars(&self, max: Option<usize>) {
        *lock(&self.service.max_param_chars) = max;
    }

    /// Every number delivered to, oldest first.
    pub(crate) fn sent(&self) -> Vec<TencentSms> {
        lock(&self.service.sent).clone()
    }
}

impl Deref for TencentSmsMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request body of the documentation's example, byte for byte (the JSON carries
    /// `未命名` as `\uXXXX` escapes).
    const DOC_PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    fn doc_request(authorization: &str) -> Incoming {
        let headers = [
            ("authorization", authorization),
            ("content-type", "application/json; charset=utf-8"),
            ("host", "cvm.tencentcloudapi.com"),
            ("x-tc-action", "DescribeInstances"),
            ("x-tc-timestamp", "1551113065"),
            ("x-tc-version", "2017-03-12"),
            ("x-tc-region", "ap-guangzhou"),
        ];
        Incoming {
            method: "POST".to_owned(),
            path: "/".to_owned(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: DOC_PAYLOAD.as_bytes().to_vec(),
            received_at: DateTime::from_timestamp(1_551_113_065, 0).expect("valid"),
        }
    }

    /// "签名方法 v3", current version: signed headers `content-type;host;x-tc-action`, the
    /// credentials masked as `AKID` + 32 `*` and 32 `*` (the page's values are computed
    /// with exactly those strings). Every intermediate value the page prints.
    #[test]
    fn reproduces_the_current_documented_example() {
        let secret_id = format!("AKID{}", "*".repeat(32));
        let secret_key = "*".repeat(32);
        let authorization = format!(
            "TC3-HMAC-SHA256 Credential={secret_id}/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host;x-tc-action, \
             Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
        );
        let req = doc_request(&authorization);
        let auth = parse_authorization(&authorization).expect("doc authorization parses");
        assert_eq!(auth.secret_id, secret_id);
        assert_eq!(auth.scope(), "2019-02-25/cvm/tc3_request");
        assert_eq!(
            super::super::sha256_hex(DOC_PAYLOAD.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let canonical = canonical_request(&req, &auth.signed_headers).expect("headers sent");
        assert_eq!(
            canonical,
            "POST\n/\n\n\
             content-type:application/json; charset=utf-8\n\
             host:cvm.tencentcloudapi.com\n\
             x-tc-action:describeinstances\n\n\
             content-type;host;x-tc-action\n\
             35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let sts = string_to_sign("1551113065", &auth.scope(), &canonical);
        assert_eq!(
            sts,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        let secret_date =
            super::super::hmac_sha256(format!("TC3{secret_key}").as_bytes(), b"2019-02-25");
        assert_eq!(
            hex::encode(&secret_date),
            "da98fb70dcf6b112dc21038d1eeeb3a95c74b4dcb12c1131f864f6066bd02be0"
        );
        assert_eq!(
            hex::encode(super::super::hmac_sha256(&secret_date, b"cvm")),
            "8d70cbefb03939f929db64d32dc2ba89b1095620119fe3e050e2b18c5bd2752f"
        );
        let key = signing_key(&secret_key, "2019-02-25", "cvm");
        assert_eq!(
            hex::encode(&key),
            "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
        );
        assert_eq!(
            signature(&key, &sts),
            "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
        );
        assert_eq!(verify_signature(&req, &auth, &secret_key), Ok(()));
        assert_eq!(
            authorization_for(
                &req,
                &secret_id,
                &secret_key,
                "2019-02-25",
                "cvm",
                &["x-tc-action", "host", "content-type"]
            ),
            authorization,
            "the mock's own signer gives the documented Authorization"
        );
    }

    /// "Signature v3", English page (tencentcloud.com/document/api/1021/34193): the same
    /// request signed with `content-type;host` only and the `…EXAMPLE` credentials — the
    /// form the official SDK signs.
    #[test]
    fn reproduces_the_older_documented_example() {
        let authorization = "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";
        let req = doc_request(authorization);
        let auth = parse_authorization(authorization).expect("parses");
        let canonical = canonical_request(&req, &auth.signed_headers).expect("headers sent");
        assert_eq!(
            super::super::sha256_hex(canonical.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            verify_signature(&req, &auth, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"),
            Ok(())
        );
        let code =
            |req: &Incoming, key: &str| verify_signature(req, &auth, key).map_err(|e| e.code);
        assert_eq!(
            code(&req, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLf"),
            Err("AuthFailure.SignatureFailure".into())
        );
        let mut tampered = doc_request(authorization);
        tampered.body = DOC_PAYLOAD.replace("1,", "2,").into_bytes();
        assert_eq!(
            code(&tampered, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"),
            Err("AuthFailure.SignatureFailure".into())
        );
        // Header values are compared lowercased: a differently-cased value still verifies.
        let mut recased = doc_request(authorization);
        for (name, value) in &mut recased.headers {
            if name == "content-type" {
                *value = "Application/JSON; charset=UTF-8".to_owned();
            }
        }
        assert_eq!(code(&recased, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"), Ok(()));
    }

    #[test]
    fn timestamps_and_utc_dates() {
        let now = DateTime::from_timestamp(1_551_113_065, 0).expect("valid");
        assert_eq!(
            check_timestamp(Some("1551113065"), "2019-02-25", now),
            Ok(())
        );
        assert_eq!(
            check_timestamp(Some("1551113365"), "2019-02-25", now),
            Ok(())
        );
        let code = |ts: &str, date: &str| check_timestamp(Some(ts), date, now).map_err(|e| e.code);
        assert_eq!(
            code("1551113366", "2019-02-25"),
            Err("AuthFailure.SignatureExpire".into())
        );
        assert_eq!(
            code("1551112764", "2019-02-25"),
            Err("AuthFailure.SignatureExpire".into())
        );
        // 1551113065 is 2019-02-26 00:44 in Beijing: the local date is refused.
        assert_eq!(
            code("1551113065", "2019-02-26"),
            Err("AuthFailure.SignatureFailure".into())
        );
        assert_eq!(
            check_timestamp(None, "2019-02-25", now).map_err(|e| e.code),
            Err("MissingParameter".into())
        );
    }

    #[test]
    fn authorization_parsing() {
        let ok = parse_authorization(
            "TC3-HMAC-SHA256 Credential=id/2024-01-02/sms/tc3_request, SignedHeaders=Content-Type;Host, Signature=ab",
        )
        .expect("parses");
        assert_eq!(ok.signed_headers, vec!["content-type", "host"]);
        assert_eq!(ok.service, "sms");
        for bad in [
            "TC3-HMAC-SHA256 Credential=id/2024-01-02/sms, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=id/2024-01-02/sms/aws4_request, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=id/2024-01-02/sms/tc3_request, SignedHeaders=host",
            "ACS3-HMAC-SHA256 Credential=id/2024-01-02/sms/tc3_request, SignedHeaders=host, Signature=ab",
        ] {
            assert!(parse_authorization(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn body_checks() {
        let body = |v: Value| parse_body(v.to_string().as_bytes(), Some(12)).map_err(|e| e.code);
        let good = json!({
            "PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666",
            "SignName": "监控", "TemplateId": "1110", "TemplateParamSet": ["a", "95%"]
        });
        assert!(body(good.clone()).is_ok());
        let with = |key: &str, value: Value| {
            let mut v = good.clone();
            v[key] = value;
            body(v)
        };
        assert_eq!(
            with("TemplateParamSet", json!([1])),
            Err("InvalidParameter".into())
        );
        assert_eq!(
            with("TemplateParamSet", json!(["x".repeat(13)])),
            Err("InvalidParameterValue.TemplateParameterLengthLimit".into())
        );
        assert_eq!(
            with("PhoneNumberSet", json!([])),
            Err("MissingParameter.EmptyPhoneNumberSet".into())
        );
        assert_eq!(
            with("PhoneNumberSet", json!(vec!["+8613800138000"; 201])),
            Err("LimitExceeded.PhoneNumberCountLimit".into())
        );
        assert_eq!(
            with("SmsSdkAppId", json!("")),
            Err("MissingParameter".into())
        );
        assert_eq!(with("Bogus", json!("x")), Err("UnknownParameter".into()));
        assert_eq!(
            parse_body(b"{", None).map_err(|e| e.code),
            Err("InvalidParameter".into())
        );
    }

    #[test]
    fn numbers_normalize_to_e164() {
        assert_eq!(
            normalize_number("13800138000").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(
            normalize_number("+8613800138000").as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(
            normalize_number("+85212345678").as_deref(),
            Some("+85212345678")
        );
        for bad in ["+861380013800", "1380013800", "+86abc", "", "+"] {
            assert_eq!(normalize_number(bad), None, "{bad}");
        }
    }
}
