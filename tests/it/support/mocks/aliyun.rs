//! Aliyun SMS (`dysmsapi`, `SendSms`, version 2017-05-25) behind a mock OpenAPI gateway
//! that verifies the V3 signature `ACS3-HMAC-SHA256` as documented in "V3版本请求体&签名机制"
//! (help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature).
//!
//! The gateway rebuilds the canonical request from what it received:
//!
//! ```text
//! CanonicalRequest = METHOD \n path \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
//! StringToSign     = "ACS3-HMAC-SHA256" \n hex(sha256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))
//! ```
//!
//! CanonicalQuery: the received parameters decoded, re-encoded with RFC 3986 (`%20`, `%2A`,
//! `~` kept, uppercase hex), sorted by name, `k=v` joined by `&`. Decoding is form-style,
//! `+` being a space: the official Python SDK signs spaces as `%20` but its HTTP stack
//! puts them on the wire as `+`, and the gateway accepts that. CanonicalHeaders: the
//! headers named in `SignedHeaders`, lowercase, values trimmed, sorted, `name:value\n`;
//! every `host`, `content-type` and `x-acs-*` header that was sent must be signed.
//! `x-acs-date` (UTC `yyyy-MM-ddTHH:mm:ssZ`) must be within 15 minutes, and a
//! `x-acs-signature-nonce` is accepted once.
//!
//! Gateway failures come back with a 4xx status and `{"RequestId","HostId","Code",
//! "Message","Recommend"}` (statuses as the real gateway answers them: 404 for an unknown
//! AccessKey or API, 400 otherwise); SendSms's own failures come back as HTTP 200 with
//! `{"Code","Message","RequestId"}`. Parameters are read from the query or from a
//! form-encoded body, as the gateway accepts both. Per-number flow control defaults to
//! Aliyun's: 1 a minute, 5 an hour, 10 a day (`isv.BUSINESS_LIMIT_CONTROL`,
//! "触发分钟级流控Permits:1" …); each template variable is at most 35 characters
//! (`isv.PARAM_LENGTH_LIMIT`).
//!
//! The gateway itself — keys, nonces, the checks above and its refusals — is
//! [`AcsGateway`], which the voice mock (`aliyun_voice.rs`) puts in front of
//! `SingleCallByTts`.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::{Handled, Incoming, MockServer, RateLimiter, RateRule, Reply, Service, lock};

pub(crate) const ALGORITHM: &str = "ACS3-HMAC-SHA256";
pub(crate) const ACTION: &str = "SendSms";
pub(crate) const VERSION: &str = "2017-05-25";
/// How far `x-acs-date` may be from the gateway's clock.
pub(crate) const DATE_TOLERANCE: Duration = Duration::from_secs(15 * 60);
/// Most numbers one SendSms call takes.
pub(crate) const MAX_NUMBERS: usize = 1000;
/// Default longest template variable, in characters.
pub(crate) const DEFAULT_MAX_PARAM_CHARS: usize = 35;

const CONTENT_TYPE: &str = "application/json;charset=utf-8";

/// Aliyun's default per-number flow control for SMS: a minute, an hour and a day.
pub(crate) fn default_rate_rules() -> Vec<RateRule> {
    flow_control([1, 5, 10])
}

/// Per-number flow control of `[minute, hour, day]` budgets, each breach answered with
/// `isv.BUSINESS_LIMIT_CONTROL` and its level ("触发分钟级流控Permits:1" …).
pub(crate) fn flow_control(budgets: [usize; 3]) -> Vec<RateRule> {
    let [minute, hour, day] = budgets;
    let rule = |budget: usize, secs: u64, level: &str| RateRule {
        budget,
        window: Duration::from_secs(secs),
        block: Duration::ZERO,
        code: "isv.BUSINESS_LIMIT_CONTROL".to_owned(),
        message: format!("触发{level}级流控Permits:{budget}"),
    };
    vec![
        rule(minute, 60, "分钟"),
        rule(hour, 3600, "小时"),
        rule(day, 86_400, "天"),
    ]
}

/// A refusal: HTTP status, `Code`, `Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AcsError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl AcsError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> AcsError {
        AcsError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn incomplete(detail: &str) -> AcsError {
        AcsError::new(
            400,
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards. {detail}"),
        )
    }
}

/// The parts of an `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub(crate) access_key_id: String,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
}

/// Parses an `Authorization` value; `None` when it is not a V3 one.
pub(crate) fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.trim().strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(value.to_owned()),
            "SignedHeaders" => signed = Some(value.to_owned()),
            "Signature" => signature = Some(value.to_owned()),
            _ => return None,
        }
    }
    let signed_headers: Vec<String> = signed?
        .split(';')
        .filter(|name| !name.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    Some(Authorization {
        access_key_id: credential.filter(|c| !c.is_empty())?,
        signed_headers,
        signature: signature.filter(|s| !s.is_empty())?,
    })
}

/// The canonical query string of a received raw query: decode each name and value once,
/// re-encode with RFC 3986, sort, join.
pub(crate) fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = super::parse_form(raw)
        .iter()
        .map(|(name, value)| (super::rfc3986(name), super::rfc3986(value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request for `req` under `signed_headers`, with the body hash computed
/// from the body actually received. Errors name a signed header that was not sent.
pub(crate) fn canonical_request(
    req: &Incoming,
    signed_headers: &[String],
) -> Result<String, AcsError> {
    let mut names: Vec<String> = signed_headers.to_vec();
    names.sort();
    names.dedup();
    let mut canonical_headers = String::new();
    for name in &names {
        let mut values: Vec<&str> = req.header_values(name).into_iter().map(str::trim).collect();
        if values.is_empty() {
            return Err(AcsError::incomplete(&format!(
                "signed header {name} is missing"
            )));
        }
        values.sort_unstable();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{}\n{}\n{canonical_headers}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(&req.query),
        names.join(";"),
        super::sha256_hex(&req.body)
    ))
}

/// `"ACS3-HMAC-SHA256\n" + hex(sha256(canonical))`.
pub(crate) fn string_to_sign(canonical: &str) -> String {
    format!("{ALGORITHM}\n{}", super::sha256_hex(canonical.as_bytes()))
}

/// `hex(HMAC-SHA256(secret, string_to_sign))`.
pub(crate) fn signature(secret: &str, string_to_sign: &str) -> String {
    hex::encode(super::hmac_sha256(
        secret.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

/// Every `host`, `content-type` and `x-acs-*` header that was sent must be signed.
pub(crate) fn check_signed_headers_cover(
    req: &Incoming,
    auth: &Authorization,
) -> Result<(), AcsError> {
    for (name, _) in &req.headers {
        let must = name == "host" || name == "content-type" || name.starts_with("x-acs-");
        if must && !auth.signed_headers.iter().any(|s| s == name) {
            return Err(AcsError::incomplete(&format!(
                "header {name} is not signed"
            )));
        }
    }
    Ok(())
}

/// Recomputes the signature of `req` with `secret` and compares it with the one sent,
/// which must be lowercase hex as the documentation and the SDKs write it.
pub(crate) fn verify_signature(
    req: &Incoming,
    auth: &Authorization,
    secret: &str,
) -> Result<(), AcsError> {
    let canonical = canonical_request(req, &auth.signed_headers)?;
    let sts = string_to_sign(&canonical);
    if signature(secret, &sts) == auth.signature {
        Ok(())
    } else {
        Err(AcsError::new(
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature does not match our calculation. server string to sign is: {}",
                sts.replace('\n', "\\n")
            ),
        ))
    }
}

/// Checks `x-acs-date` against `now`.
pub(crate) fn check_date(value: Option<&str>, now: DateTime<Utc>) -> Result<(), AcsError> {
    let date = value
        .and_then(|v| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%SZ").ok())
        .map(|naive| naive.and_utc())
        .ok_or_else(|| {
            AcsError::new(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        })?;
    let skew = (now - date).abs().to_std().unwrap_or(Duration::MAX);
    if skew > DATE_TOLERANCE {
        return Err(AcsError::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    Ok(())
}

/// Checks `TemplateParam`: a JSON object whose values are all strings, each at most
/// `max_chars` characters. Errors are SendSms business codes.
pub(crate) fn check_template_param(
    raw: &str,
    max_chars: Option<usize>,
) -> Result<Value, (&'static str, &'static str)> {
    const INVALID: (&str, &str) = ("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值");
    let object = string_object(raw).ok_or(INVALID)?;
    if max_chars.is_some_and(|max| object.values().any(|text| text.chars().count() > max)) {
        return Err(("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制"));
    }
    Ok(json!(object))
}

/// `raw` as a JSON object whose values are all strings (what `TemplateParam` and
/// `TtsParam` must be), or `None`.
pub(crate) fn string_object(raw: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let value: Value = serde_json::from_str(raw).ok()?;
    value
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// Whether `number` looks like a phone number Aliyun takes: digits, optionally after `+`
/// or `00` for international numbers.
pub(crate) fn valid_number(number: &str) -> bool {
    let digits = number
        .strip_prefix('+')
        .or_else(|| number.strip_prefix("00"))
        .unwrap_or(number);
    (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// One SendSms call the mock accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AliyunSms {
    pub(crate) phone_numbers: Vec<String>,
    pub(crate) sign_name: String,
    pub(crate) template_code: String,
    pub(crate) template_param: Option<Value>,
    pub(crate) access_key_id: String,
    pub(crate) biz_id: String,
}

/// The OpenAPI gateway in front of one product's one action: it knows the AccessKey
/// pairs and the nonces used, checks path, action, version, date, key and the V3
/// signature, and answers its refusals in the gateway's shape. Shared by the SMS
/// (`SendSms`) and voice (`SingleCallByTts`, `aliyun_voice.rs`) mocks.
pub(crate) struct AcsGateway {
    keys: Mutex<HashMap<String, String>>,
    nonces: Mutex<HashSet<String>>,
    /// The product's endpoint, reported as `HostId` when the request named no host.
    host: &'static str,
    /// The product's name in the `Recommend` link, e.g. `Dysmsapi`.
    product: &'static str,
    action: &'static str,
    version: &'static str,
}

impl AcsGateway {
    /// A gateway for `action` of `version` that knows one AccessKey pair.
    pub(crate) fn new(
        host: &'static str,
        product: &'static str,
        action: &'static str,
        version: &'static str,
        access_key_id: &str,
        access_key_secret: &str,
    ) -> AcsGateway {
        AcsGateway {
            keys: Mutex::new(HashMap::from([(
                access_key_id.to_owned(),
                access_key_secret.to_owned(),
            )])),
            nonces: Mutex::new(HashSet::new()),
            host,
            product,
            action,
            version,
        }
    }

    /// Another AccessKey pair the gateway accepts.
    pub(crate) fn add_access_key(&self, access_key_id: &str, access_key_secret: &str) {
        lock(&self.keys).insert(access_key_id.to_owned(), access_key_secret.to_owned());
    }

    /// A gateway refusal: its status and `{"RequestId","HostId","Code","Message","Recommend"}`.
    pub(crate) fn refuse(&self, req: &Incoming, error: &AcsError) -> Handled {
        let reply = Reply::json(
            error.status,
            CONTENT_TYPE,
            &json!({
                "RequestId": super::request_id(),
                "HostId": req.header("host").unwrap_or(self.host),
                "Code": error.code,
                "Message": error.message,
                "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}&product={}", error.code, self.product),
            }),
        );
        Handled::rejected(&error.code, reply)
    }

    /// A business answer: HTTP 200 with `{"Code","Message","RequestId"}`.
    pub(crate) fn business(code: &str, message: &str) -> Reply {
        Reply::json(
            200,
            CONTENT_TYPE,
            &json!({"Code": code, "Message": message, "RequestId": super::request_id()}),
        )
    }

    /// The reply carrying `code` for `Misbehave::ErrCode`: business codes (`isv.*`,
    /// `isp.*`) inside a 200, gateway codes with their status.
    pub(crate) fn error_reply(&self, code: &str, message: &str) -> Reply {
        let status = match code {
            "InternalError" => 500,
            "ServiceUnavailable" => 503,
            c if c.starts_with("isv.") || c.starts_with("isp.") || c == "OK" => 200,
            _ => 400,
        };
        if status == 200 {
            AcsGateway::business(code, message)
        } else {
            Reply::json(
                status,
                CONTENT_TYPE,
                &json!({"RequestId": super::request_id(), "HostId": self.host, "Code": code, "Message": message}),
            )
        }
    }

    /// Path, action, version, signature, date, key and nonce; the AccessKey id on success.
    pub(crate) fn authenticate(&self, req: &Incoming) -> Result<String, AcsError> {
        if req.path != "/" || req.header("x-acs-action") != Some(self.action) {
            return Err(AcsError::new(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            ));
        }
        if req.header("x-acs-version") != Some(self.version) {
            return Err(AcsError::new(
                400,
                "InvalidVersion",
                "Specified parameter Version is not valid.",
            ));
        }
        let auth = req
            .header("authorization")
            .and_then(parse_authorization)
            .ok_or_else(|| AcsError::incomplete("missing or malformed Authorization"))?;
        check_date(req.header("x-acs-date"), req.received_at)?;
        let secret = lock(&self.keys)
            .get(&auth.access_key_id)
            .cloned()
            .ok_or_else(|| {
                AcsError::new(
                    404,
                    "InvalidAccessKeyId.NotFound",
                    "Specified access key is not found.",
                )
            })?;
        for required in ["x-acs-content-sha256", "x-acs-signature-nonce"] {
            if req.header(required).is_none() {
                return Err(AcsError::incomplete(&format!("{required} is missing")));
            }
        }
        check_signed_headers_cover(req, &auth)?;
        verify_signature(req, &auth, &secret)?;
        let nonce = req.header("x-acs-signature-nonce").unwrap_or_default();
        if !lock(&self.nonces).insert(nonce.to_owned()) {
            return Err(AcsError::new(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ));
        }
        Ok(auth.access_key_id)
    }

    /// The call's parameters: the query, then a form-encoded body (the gateway takes
    /// both); `param(name)` is the last non-empty value of `name`.
    pub(crate) fn params(req: &Incoming) -> Params {
        let mut params = req.form_query();
        let form_body = req
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if form_body {
            params.extend(super::parse_form(&String::from_utf8_lossy(&req.body)));
        }
        Params(params)
    }
}

/// A call's decoded parameters, in the order received.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The last non-empty value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty())
    }

    /// `name`'s value, or the gateway's `Missing{name}` refusal.
    pub(crate) fn required(&self, name: &str) -> Result<String, AcsError> {
        self.get(name).ok_or_else(|| {
            AcsError::new(
                400,
                &format!("Missing{name}"),
                format!("{name} is mandatory for this action."),
            )
        })
    }
}

struct Aliyun {
    gateway: AcsGateway,
    limiter: Mutex<RateLimiter>,
    max_param_chars: Mutex<Option<usize>>,
    sent: Mutex<Vec<AliyunSms>>,
}

impl Service for Aliyun {
    fn handle(&self, req: &Incoming, now: Instant) -> Handled {
        let access_key_id = match self.gateway.authenticate(req) {
            Ok(id) => id,
            Err(error) => return self.gateway.refuse(req, &error),
        };
        let params = AcsGateway::params(req);
        let mut required = HashMap::new();
        for name in ["PhoneNumbers", "SignName", "TemplateCode"] {
            match params.required(name) {
                Ok(value) => required.insert(name, value),
                Err(error) => return self.gateway.refuse(req, &error),
            };
        }
        let numbers: Vec<String> = required["PhoneNumbers"]
            .split(',')
            .map(|n| n.trim().to_owned())
            .collect();
        if numbers.len() > MAX_NUMBERS {
            return Handled::rejected(
                "isv.MOBILE_COUNT_OVER_LIMIT",
                AcsGateway::business("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制"),
            );
        }
        if let Some(bad) = numbers.iter().find(|n| !valid_number(n)) {
            return Handled::rejected(
                "isv.MOBILE_NUMBER_ILLEGAL",
                AcsGateway::business(
                    "isv.MOBILE_NUMBER_ILLEGAL",
                    &format!("invalid mobile number {bad}"),
                ),
            );
        }
        let template_param = match params.get("TemplateParam") {
            None => None,
            Some(raw) => match check_template_param(&raw, *lock(&self.max_param_chars)) {
                Ok(value) => Some(value),
                Err((code, message)) => {
                    return Handled::rejected(code, AcsGateway::business(code, message));
                }
            },
        };
        if let Err(refused) = admit_numbers(&self.limiter, &numbers, now) {
            return refused;
        }
        let biz_id = format!(
            "{}^0",
            fastrand::u64(100_000_000_000_000..999_999_999_999_999)
        );
        lock(&self.sent).push(AliyunSms {
            phone_numbers: numbers,
            sign_name: required["SignName"].clone(),
            template_code: required["TemplateCode"].clone(),
            template_param,
            access_key_id,
            biz_id: biz_id.clone(),
        });
        Handled::accepted(Reply::json(
            200,
            CONTENT_TYPE,
            &json!({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": super::request_id()}),
        ))
    }

    fn error_reply(&self, code: &str, message: &str) -> Reply {
        self.gateway.error_reply(code, message)
    }
}

/// Per-number flow control: every number within its budget (then each counts one), or
/// the refusal of the first rule a number breaks, as a business answer.
pub(crate) fn admit_numbers(
    limiter: &Mutex<RateLimiter>,
    numbers: &[String],
    now: Instant,
) -> Result<(), Handled> {
    let mut limiter = lock(limiter);
    for number in numbers {
        if let Err(rule) = limiter.check(number, now) {
            return Err(Handled::rate_limited(
                &rule.code,
                AcsGateway::business(&rule.code, &rule.message),
            ));
        }
    }
    for number in numbers {
        limiter.record(number, now);
    }
    Ok(())
}

/// The per-number rule `budget` per `window`, blocked for `block`, answered with
/// `isv.BUSINESS_LIMIT_CONTROL` at the minute level.
pub(crate) fn business_limit(budget: usize, window: Duration, block: Duration) -> RateRule {
    RateRule {
        budget,
        window,
        block,
        code: "isv.BUSINESS_LIMIT_CONTROL".to_owned(),
        message: format!("触发分钟级流控Permits:{budget}"),
    }
}

/// A running Aliyun SMS mock; see the module doc. Derefs to its [`MockServer`].
pub(crate) struct AliyunSmsMock {
    server: MockServer,
    service: Arc<Aliyun>,
}

impl AliyunSmsMock {
    /// A gateway that knows one AccessKey pair.
    pub(crate) fn start(access_key_id: &str, access_key_secret: &str) -> AliyunSmsMock {
        let service = Arc::new(Aliyun {
            gateway: AcsGateway::new(
                "dysmsapi.aliyuncs.com",
                "Dysmsapi",
                ACTION,
                VERSION,
                access_key_id,
                access_key_secret,
            ),
            limiter: Mutex::new(RateLimiter::new(default_rate_rules())),
            max_param_chars: Mutex::new(Some(DEFAULT_MAX_PARAM_CHARS)),
            sent: Mutex::new(Vec::new()),
        });
        let server = MockServer::start("aliyun-sms", Arc::clone(&service) as Arc<dyn Service>);
        AliyunSmsMock { server, service }
    }

    /// The endpoint to configure instead of `dysmsapi.aliyuncs.com`: `127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        self.server.addr().to_string()
    }

    /// Another AccessKey pair the gateway accepts.
    pub(crate) fn add_access_key(&self, access_key_id: &str, access_key_secret: &str) {
        self.service
            .gateway
            .add_access_key(access_key_id, access_key_secret);
    }

    /// One per-number tier instead of Aliyun's three: `budget` per `window`, then blocked
    /// for `block`. Resets the rate history.
    pub(crate) fn set_rate_limit(&self, budget: usize, window: Duration, block: Duration) {
        lock(&self.service.limiter).set_rules(vec![business_limit(budget, window, block)]);
    }

    /// Any per-number tiers. Resets the rate history.
    pub(crate) fn set_rate_rules(&self, rules: Vec<RateRule>) {
        lock(&self.service.limiter).set_rules(rules);
    }

    /// The longest template variable accepted (`None`: no limit).
    pub(crate) fn set_max_param_chars(&self, max: Option<usize>) {
        *lock(&self.service.max_param_chars) = max;
    }

    /// The SendSms calls accepted, oldest first.
    pub(crate) fn sent(&self) -> Vec<AliyunSms> {
        lock(&self.service.sent).clone()
    }
}

impl Deref for AliyunSmsMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_AUTHORIZATION: &str = "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,\
        SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
        Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0";

    fn doc_time() -> DateTime<Utc> {
        DateTime::from_timestamp(1_698_315_752, 0).expect("valid")
    }

    /// The fixed-value example of "V3版本请求体&签名机制": ECS RunInstances, RPC style,
    /// parameters in the query, empty body, as it arrives on the wire.
    fn doc_request() -> Incoming {
        let headers = [
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            (
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-version", "2014-05-26"),
            ("authorization", DOC_AUTHORIZATION),
        ];
        Incoming {
            method: "POST".to_owned(),
            path: "/".to_owned(),
            query:
                "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
                    .to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
            received_at: doc_time(),
        }
    }

    #[test]
    fn reproduces_the_documented_example() {
        let req = doc_request();
        let auth = parse_authorization(DOC_AUTHORIZATION).expect("doc authorization parses");
        assert_eq!(auth.access_key_id, "YourAccessKeyId");
        let canonical = canonical_request(&req, &auth.signed_headers).expect("all headers sent");
        assert_eq!(
            canonical,
            "POST\n/\n\
             ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
             host:ecs.cn-shanghai.aliyuncs.com\n\
             x-acs-action:RunInstances\n\
             x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-acs-date:2023-10-26T10:22:32Z\n\
             x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n\
             x-acs-version:2014-05-26\n\n\
             host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(&canonical);
        assert_eq!(
            sts,
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            signature("YourAccessKeySecret", &sts),
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        assert_eq!(verify_signature(&req, &auth, "YourAccessKeySecret"), Ok(()));
        assert_eq!(check_signed_headers_cover(&req, &auth), Ok(()));
        assert_eq!(check_date(req.header("x-acs-date"), doc_time()), Ok(()));
    }

    #[test]
    fn tampering_breaks_the_documented_example() {
        let auth = parse_authorization(DOC_AUTHORIZATION).expect("parses");
        let wrong = |req: &Incoming| verify_signature(req, &auth, "YourAccessKeySecret");
        assert_eq!(
            wrong(&doc_request()).map_err(|e| e.code),
            Ok(()),
            "the untouched request verifies"
        );
        let mut req = doc_request();
        req.query = req.query.replace("cn-shanghai", "cn-hangzhou");
        assert_eq!(
            wrong(&req).map_err(|e| e.code),
            Err("SignatureDoesNotMatch".into())
        );
        let mut req = doc_request();
        req.body = b"x".to_vec();
        assert_eq!(
            wrong(&req).map_err(|e| e.code),
            Err("SignatureDoesNotMatch".into())
        );
        let mut req = doc_request();
        req.headers.retain(|(n, _)| n != "x-acs-date");
        assert_eq!(
            wrong(&req).map_err(|e| e.code),
            Err("IncompleteSignature".into())
        );
        assert_eq!(
            verify_signature(&doc_request(), &auth, "OtherSecret").map_err(|e| e.code),
            Err("SignatureDoesNotMatch".into())
        );
        // The right signature in upper-case hex.
        let upper = parse_authorization(&DOC_AUTHORIZATION.replace(
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0",
            "06563A9E1B43F5DFE96B81484DA74BCEAB24A1D853912EEE15083A6F0F3283C0",
        ))
        .expect("parses");
        assert_eq!(
            verify_signature(&doc_request(), &upper, "YourAccessKeySecret").map_err(|e| e.code),
            Err("SignatureDoesNotMatch".into())
        );
        // An x-acs-* header sent but left out of SignedHeaders.
        let mut req = doc_request();
        req.headers.push(("x-acs-extra".to_owned(), "1".to_owned()));
        assert_eq!(
            check_signed_headers_cover(&req, &auth).map_err(|e| e.code),
            Err("IncompleteSignature".into())
        );
    }

    #[test]
    fn canonical_query_reencodes_with_rfc3986() {
        // Received form-style or RFC 3986-style, the canonical form is the same.
        assert_eq!(
            canonical_query("b=x+y%2A~&a=&c%20d=%2F"),
            "a=&b=x%20y%2A~&c%20d=%2F"
        );
        assert_eq!(
            canonical_query("b=x%20y*%7E&a&c+d=/"),
            "a=&b=x%20y%2A~&c%20d=%2F"
        );
        assert_eq!(
            canonical_query("SignName=%E7%9B%91%E6%8E%A7&PhoneNumbers=13800138000"),
            "PhoneNumbers=13800138000&SignName=%E7%9B%91%E6%8E%A7"
        );
        assert_eq!(canonical_query(""), "");
    }

    #[test]
    fn dates_within_fifteen_minutes() {
        let now = doc_time();
        assert_eq!(check_date(Some("2023-10-26T10:37:32Z"), now), Ok(()));
        assert_eq!(check_date(Some("2023-10-26T10:07:32Z"), now), Ok(()));
        let code = |v| check_date(Some(v), now).map_err(|e| e.code);
        assert_eq!(
            code("2023-10-26T10:37:33Z"),
            Err("InvalidTimeStamp.Expired".into())
        );
        assert_eq!(
            code("2023-10-26T10:07:31Z"),
            Err("InvalidTimeStamp.Expired".into())
        );
        assert_eq!(
            code("2023-10-26 10:22:32"),
            Err("InvalidTimeStamp.Format".into())
        );
        assert_eq!(
            code("2023-10-26T18:22:32+08:00"),
            Err("InvalidTimeStamp.Format".into())
        );
    }

    #[test]
    fn template_params_must_be_strings() {
        assert!(check_template_param(r#"{"a":"1","b":"x"}"#, Some(35)).is_ok());
        let code = |raw: &str| check_template_param(raw, Some(3)).map_err(|e| e.0);
        assert_eq!(code(r#"{"a":1}"#), Err("isv.INVALID_JSON_PARAM"));
        assert_eq!(code(r#"{"a":null}"#), Err("isv.INVALID_JSON_PARAM"));
        assert_eq!(code(r#"["a"]"#), Err("isv.INVALID_JSON_PARAM"));
        assert_eq!(code("not json"), Err("isv.INVALID_JSON_PARAM"));
        assert_eq!(code(r#"{"a":"告警告警"}"#), Err("isv.PARAM_LENGTH_LIMIT"));
        assert_eq!(code(r#"{"a":"告警告"}"#).map(|_| ()), Ok(()));
    }

    #[test]
    fn phone_numbers() {
        for ok in ["13800138000", "+85212345678", "0085212345678"] {
            assert!(valid_number(ok), "{ok}");
        }
        for bad in ["", "1380013800a", "+", "138 0013 8000", "1234"] {
            assert!(!valid_number(bad), "{bad}");
        }
    }

    #[test]
    fn authorization_parsing() {
        assert!(
            parse_authorization("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=ff")
                .is_some()
        );
        assert!(
            parse_authorization("ACS3-HMAC-SHA256 Credential=a, SignedHeaders=host, Signature=ff")
                .is_some()
        );
        assert!(
            parse_authorization("ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=ff")
                .is_none()
        );
        assert!(parse_authorization("ACS3-HMAC-SHA256 SignedHeaders=host,Signature=ff").is_none());
        assert!(
            parse_authorization("TC3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=ff")
                .is_none()
        );
    }
}
