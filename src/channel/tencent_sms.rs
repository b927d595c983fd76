//! Tencent Cloud SMS `SendSms` (API version 2021-01-11): the `TC3-HMAC-SHA256` request
//! signature (generic over service, action and version), the SendSms body, and `classify`
//! for its replies.
//!
//! # Signature (TC3-HMAC-SHA256)
//!
//! Sources, read 2026: Tencent Cloud "签名方法 v3" (cloud.tencent.com/document/api/362/4208
//! and the same page under every product; English "Signature v3",
//! tencentcloud.com/document/api/1021/34193) and the official Python SDK
//! (`TencentCloud/tencentcloud-sdk-python`, `tencentcloud/common/sign.py` `sign_tc3` and
//! `abstract_client.py` `_build_req_with_tc3_signature`).
//!
//! ```text
//! CanonicalRequest = POST \n / \n "" \n CanonicalHeaders \n SignedHeaders \n hex(sha256(payload))
//! StringToSign     = "TC3-HMAC-SHA256" \n Timestamp \n Date/service/tc3_request \n
//!                    hex(sha256(CanonicalRequest))
//! SecretSigning    = HMAC(HMAC(HMAC("TC3" + SecretKey, Date), service), "tc3_request")
//! Signature        = hex(HMAC(SecretSigning, StringToSign))
//! Authorization    = TC3-HMAC-SHA256 Credential=SecretId/Date/service/tc3_request,
//!                    SignedHeaders=…, Signature=…
//! ```
//!
//! `Date` is the UTC date of `X-TC-Timestamp` — not the local one, or every request
//! between 00:00 and 08:00 Beijing time is rejected. Canonical header names and values
//! are lowercased and trimmed. This signer signs `content-type;host;x-tc-action`, as the
//! current documentation does; the SDK and the older English page sign only
//! `content-type;host`, which the server accepts too (both are tested below).
//!
//! # Replies
//!
//! Source: "短信 API 3.0 错误码" (cloud.tencent.com/document/api/382/59177) and the
//! common error codes. Every reply is HTTP 200 with `{"Response": {...}}`. A request-level
//! failure has `Response.Error.Code`; otherwise `Response.SendStatusSet[]` has one entry
//! per number whose `Code` is `Ok` on success. Codes map as follows (a failing number's
//! code the same way as a request-level one):
//!
//! | Code | Outcome |
//! |---|---|
//! | `Ok` | delivered |
//! | `LimitExceeded.PhoneNumberThirtySecondLimit` | rate limited, 30 s |
//! | `LimitExceeded.DeliveryFrequencyLimit`, `LimitExceeded.GlobalSmsSendingRateLimit` | rate limited, 60 s |
//! | `LimitExceeded.PhoneNumberOneHourLimit`, `…DailyLimit`, `…SameContentDailyLimit`, `LimitExceeded.AppDailyLimit` and the other daily caps | rate limited, 1 h |
//! | `RequestLimitExceeded*` (API call rate) | rate limited, outbox default |
//! | `LimitExceeded.PhoneNumberCountLimit` (over 200 numbers), `LimitExceeded.AppCountryOrRegionInBlacklist` | permanent: not a rate |
//! | `InvalidParameterValue.ContentLengthLimit`, `InvalidParameterValue.TemplateParameterLengthLimit` | too long |
//! | `InternalError`, `InternalError.*` (timeouts, send/receive failures), `ResourceUnavailable*` | transient |
//! | everything else — `AuthFailure.*`, `FailedOperation.SignatureIncorrectOrUnapproved`, `FailedOperation.TemplateIncorrectOrUnapproved`, `FailedOperation.InsufficientBalanceInSmsPackage`, `FailedOperation.PhoneNumberInBlacklist`, `InvalidParameterValue.*`, `UnauthorizedOperation.*`, `UnsupportedOperation.*`, `MissingParameter*` … | permanent |
//!
//! When several numbers fail differently the most severe outcome wins (see
//! [`Outcome`]); a request to several numbers that partly succeeded and is retried
//! reaches the successful numbers again, so the sender should send one number per call.

use std::time::Duration;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use super::outcome::{Outcome, by_status, snippet};
use super::sign::{SignedRequest, hmac_sha256, hmac_sha256_hex, sha256_hex, split_endpoint};
use super::{ChannelKind, Compose, Defaults, Delivery, Error, Message, Shown, http, sms};
use crate::configfile::{Checker, Secret};

/// A conservative bound for one template variable.
pub const PARAM_MAX_CHARS: usize = 20;

/// `type: tencent_sms` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub secret_id: Option<String>,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<String>,
    pub sdk_app_id: Option<String>,
    pub sign_name: Option<String>,
    pub template_id: Option<String>,
    #[serde(default)]
    pub template_params: Vec<String>,
    #[serde(default)]
    pub phone_numbers: Vec<String>,
}

/// Tencent Cloud SMS to a list of numbers, one SendSms call per number.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub region: String,
    pub secret_id: String,
    pub secret_key: Secret,
    pub sdk_app_id: String,
    pub sign_name: String,
    pub template_id: String,
    /// minijinja templates over the notification, in the template's order.
    pub template_params: Vec<String>,
    pub phone_numbers: Vec<String>,
}

/// One message's payload: the number and the rendered variables.
#[derive(Debug, Serialize, Deserialize)]
struct Sms {
    phone: String,
    params: Vec<String>,
}

impl ChannelKind for Config {
    const TYPE: &'static str = "tencent_sms";
    const DEFAULTS: Defaults = Defaults::SMS;
    /// SMS text is the approved template; `template_params` take the place of `template`.
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
                    .unwrap_or("https://sms.tencentcloudapi.com"),
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
        let secret_id = check.required(path, "secret_id", raw.secret_id.as_deref());
        let sdk_app_id = check.required(path, "sdk_app_id", raw.sdk_app_id.as_deref());
        let sign_name = check.required(path, "sign_name", raw.sign_name.as_deref());
        let template_id = check.required(path, "template_id", raw.template_id.as_deref());
        Some(Self {
            endpoint: endpoint?.expose().to_owned(),
            region: raw
                .region
                .clone()
                .unwrap_or_else(|| "ap-guangzhou".to_owned()),
            secret_id: secret_id?.to_owned(),
            secret_key: secret?,
            sdk_app_id: sdk_app_id?.to_owned(),
            sign_name: sign_name?.to_owned(),
            template_id: template_id?.to_owned(),
            template_params: raw.template_params.clone(),
            phone_numbers: raw.phone_numbers.clone(),
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
            |phone| Sms {
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
        let sms = match sms::payload::<Sms>(message, Self::TYPE) {
            Ok(sms) => sms,
            Err(outcome) => return outcome,
        };
        let phones = [sms.phone];
        let call = SendSms {
            sdk_app_id: &self.sdk_app_id,
            sign_name: &self.sign_name,
            template_id: &self.template_id,
            template_params: &sms.params,
            phone_numbers: &phones,
        };
        let signed = sign_send_sms_to(
            &self.endpoint,
            &self.region,
            &call,
            &self.secret_id,
            self.secret_key.expose(),
            now,
        );
        http::send_signed(client, signed, classify).await
    }
}

/// The SMS endpoint.
pub const HOST: &str = "sms.tencentcloudapi.com";
/// The service name in the credential scope; the first label of [`HOST`].
pub const SERVICE: &str = "sms";
/// The SendSms action name.
pub const SEND_SMS_ACTION: &str = "SendSms";
/// The API version SendSms is called with.
pub const SEND_SMS_VERSION: &str = "2021-01-11";
/// The signature algorithm name.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The body's content type, exactly as sent and signed.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// One API 3.0 call to sign: `POST /` with a JSON body.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The endpoint host, e.g. [`HOST`], or a URL `scheme://host[:port]`.
    pub host: &'a str,
    /// The service in the credential scope, e.g. [`SERVICE`].
    pub service: &'a str,
    /// `X-TC-Action`, e.g. [`SEND_SMS_ACTION`].
    pub action: &'a str,
    /// `X-TC-Version`, e.g. [`SEND_SMS_VERSION`].
    pub version: &'a str,
    /// `X-TC-Region`, e.g. `ap-guangzhou`; SendSms requires it.
    pub region: Option<&'a str>,
    /// The signing time, sent as `X-TC-Timestamp`; the server rejects more than five
    /// minutes of skew.
    pub timestamp: DateTime<Utc>,
    /// The JSON body, hashed exactly as sent.
    pub payload: &'a [u8],
}

/// Signs `req` with the SecretId/SecretKey pair, returning the request to send as it is.
pub fn sign_request(req: &Request<'_>, secret_id: &str, secret_key: &str) -> SignedRequest {
    let (scheme, host) = split_endpoint(req.host);
    let signed = [
        ("content-type", CONTENT_TYPE),
        ("host", host),
        ("x-tc-action", req.action),
    ];
    let authorization = authorization(
        secret_id,
        secret_key,
        req.service,
        req.timestamp,
        &signed,
        req.payload,
    );
    let mut headers = vec![
        ("Authorization".to_owned(), authorization),
        ("Content-Type".to_owned(), CONTENT_TYPE.to_owned()),
        ("Host".to_owned(), host.to_owned()),
        ("X-TC-Action".to_owned(), req.action.to_owned()),
        (
            "X-TC-Timestamp".to_owned(),
            req.timestamp.timestamp().to_string(),
        ),
        ("X-TC-Version".to_owned(), req.version.to_owned()),
    ];
    if let Some(region) = req.region {
        headers.push(("X-TC-Region".to_owned(), region.to_owned()));
    }
    SignedRequest {
        method: "POST",
        url: format!("{scheme}://{host}/"),
        headers,
        body: req.payload.to_vec(),
    }
}

/// The parameters of one SendSms call.
#[derive(Debug, Clone, Copy)]
pub struct SendSms<'a> {
    /// The SMS application id (`SmsSdkAppId`), e.g. `1400006666`.
    pub sdk_app_id: &'a str,
    /// The approved signature name; required for mainland numbers.
    pub sign_name: &'a str,
    /// The approved template id.
    pub template_id: &'a str,
    /// Template variables in template order (`TemplateParamSet`).
    pub template_params: &'a [String],
    /// Recipients in E.164 form, e.g. `+8613800138000` (`PhoneNumberSet`, at most 200).
    pub phone_numbers: &'a [String],
}

/// The SendSms JSON body.
pub fn send_sms_payload(sms: &SendSms<'_>) -> Vec<u8> {
    serde_json::json!({
        "PhoneNumberSet": sms.phone_numbers,
        "SmsSdkAppId": sms.sdk_app_id,
        "SignName": sms.sign_name,
        "TemplateId": sms.template_id,
        "TemplateParamSet": sms.template_params,
    })
    .to_string()
    .into_bytes()
}

/// Signs a SendSms call to [`HOST`] in `region`.
pub fn sign_send_sms(
    region: &str,
    sms: &SendSms<'_>,
    secret_id: &str,
    secret_key: &str,
    timestamp: DateTime<Utc>,
) -> SignedRequest {
    sign_send_sms_to(HOST, region, sms, secret_id, secret_key, timestamp)
}

/// Signs a SendSms call to `endpoint` (a host or `scheme://host[:port]`) in `region`.
pub fn sign_send_sms_to(
    endpoint: &str,
    region: &str,
    sms: &SendSms<'_>,
    secret_id: &str,
    secret_key: &str,
    timestamp: DateTime<Utc>,
) -> SignedRequest {
    let payload = send_sms_payload(sms);
    let req = Request {
        host: endpoint,
        service: SERVICE,
        action: SEND_SMS_ACTION,
        version: SEND_SMS_VERSION,
        region: Some(region),
        timestamp,
        payload: &payload,
    };
    sign_request(&req, secret_id, secret_key)
}

/// The `Authorization` value for a request whose signed headers are `signed` (names and
/// values as sent; they are lowercased, trimmed and sorted here).
fn authorization(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    timestamp: DateTime<Utc>,
    signed: &[(&str, &str)],
    payload: &[u8],
) -> String {
    let date = timestamp.format("%Y-%m-%d").to_string();
    let (canonical, signed_headers) = canonical_request(signed, payload);
    let string_to_sign = string_to_sign(timestamp.timestamp(), &date, service, &canonical);
    let key = signing_key(secret_key, &date, service);
    let signature = hmac_sha256_hex(&key, string_to_sign.as_bytes());
    format!(
        "{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, \
         SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// The canonical request and the `SignedHeaders` list.
fn canonical_request(signed: &[(&str, &str)], payload: &[u8]) -> (String, String) {
    let mut headers: Vec<(String, String)> = signed
        .iter()
        .map(|(name, value)| {
            (
                name.trim().to_ascii_lowercase(),
                value.trim().to_ascii_lowercase(),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
        sha256_hex(payload)
    );
    (canonical, signed_headers)
}

fn string_to_sign(timestamp: i64, date: &str, service: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

/// `SecretSigning`: the key derived from the SecretKey for one date and service.
fn signing_key(secret_key: &str, date: &str, service: &str) -> Vec<u8> {
    let secret_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let secret_service = hmac_sha256(&secret_date, service.as_bytes());
    hmac_sha256(&secret_service, b"tc3_request")
}

/// Maps one Tencent error code (request-level or per number); see the module doc.
pub(super) fn classify_code(code: &str, message: &str) -> Outcome {
    let detail = || format!("{code}: {message}");
    let secs = |s| Outcome::RateLimited {
        retry_after: Some(Duration::from_secs(s)),
    };
    match code {
        "Ok" => Outcome::Delivered,
        "LimitExceeded.PhoneNumberCountLimit" | "LimitExceeded.AppCountryOrRegionInBlacklist" => {
            Outcome::Permanent(detail())
        }
        "LimitExceeded.PhoneNumberThirtySecondLimit" => secs(30),
        "LimitExceeded.DeliveryFrequencyLimit" | "LimitExceeded.GlobalSmsSendingRateLimit" => {
            secs(60)
        }
        c if c.starts_with("LimitExceeded.") => secs(3600),
        c if c.starts_with("RequestLimitExceeded") => Outcome::RateLimited { retry_after: None },
        "InvalidParameterValue.ContentLengthLimit"
        | "InvalidParameterValue.TemplateParameterLengthLimit" => Outcome::TooLong(detail()),
        c if c == "InternalError"
            || c.starts_with("InternalError.")
            || c.starts_with("ResourceUnavailable") =>
        {
            Outcome::Transient(detail())
        }
        _ => Outcome::Permanent(detail()),
    }
}

/// The `Response` object of an API 3.0 reply; `Err` with the outcome when the status
/// decides, when there is no `Response`, or when it carries an `Error` (whose code and
/// message `classify_code` maps).
pub(super) fn response(
    status: u16,
    body: &[u8],
    classify_code: fn(&str, &str) -> Outcome,
) -> Result<serde_json::Value, Outcome> {
    if let Some(outcome) = by_status(status, body) {
        return Err(outcome);
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let Some(response) = parsed.and_then(|mut v| v.get_mut("Response").map(std::mem::take)) else {
        return Err(Outcome::Transient(format!(
            "reply without a Response: {}",
            snippet(body)
        )));
    };
    match response.get("Error") {
        Some(error) => Err(classify_code(&text(error, "Code"), &text(error, "Message"))),
        None => Ok(response),
    }
}

/// The string at `key` of `value`, empty when absent.
fn text(value: &serde_json::Value, key: &str) -> String {
    value
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// Classifies a SendSms (or any API 3.0) reply; see the module doc for the table.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    let response = match response(status, body, classify_code) {
        Ok(response) => response,
        Err(outcome) => return outcome,
    };
    let statuses = response
        .get("SendStatusSet")
        .and_then(serde_json::Value::as_array)
        .filter(|set| !set.is_empty());
    let Some(statuses) = statuses else {
        return Outcome::Transient(format!(
            "reply without Error or SendStatusSet: {}",
            snippet(body)
        ));
    };
    statuses
        .iter()
        .map(|s| {
            let outcome = classify_code(&text(s, "Code"), &text(s, "Message"));
            match outcome {
                Outcome::Transient(d) => Outcome::Transient(for_number(s, d)),
                Outcome::Permanent(d) => Outcome::Permanent(for_number(s, d)),
                Outcome::TooLong(d) => Outcome::TooLong(for_number(s, d)),
                other => other,
            }
        })
        .fold(Outcome::Delivered, Outcome::worst)
}

/// Prefixes a per-number failure with the number it is about.
fn for_number(status: &serde_json::Value, detail: String) -> String {
    match status
        .get("PhoneNumber")
        .and_then(serde_json::Value::as_str)
    {
        Some(number) => format!("{number}: {detail}"),
        None => detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request body of the documentation's example, byte for byte: the JSON carries
    /// `未命名` as literal `\uXXXX` escapes.
    const DOC_PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    fn doc_time() -> DateTime<Utc> {
        DateTime::from_timestamp(1_551_113_065, 0).unwrap()
    }

    fn doc_request() -> Request<'static> {
        Request {
            host: "cvm.tencentcloudapi.com",
            service: "cvm",
            action: "DescribeInstances",
            version: "2017-03-12",
            region: Some("ap-guangzhou"),
            timestamp: doc_time(),
            payload: DOC_PAYLOAD.as_bytes(),
        }
    }

    /// "签名方法 v3", current version (CVM DescribeInstances, signed headers
    /// `content-type;host;x-tc-action`). The page masks the credentials as `AKID` plus 32
    /// `*` and 32 `*`, and its values are computed with exactly those strings.
    #[test]
    fn reproduces_the_current_published_example() {
        let secret_id = format!("AKID{}", "*".repeat(32));
        let secret_key = "*".repeat(32);
        let signed = [
            ("content-type", CONTENT_TYPE),
            ("host", "cvm.tencentcloudapi.com"),
            ("x-tc-action", "DescribeInstances"),
        ];
        let (canonical, signed_headers) = canonical_request(&signed, DOC_PAYLOAD.as_bytes());
        assert_eq!(
            canonical,
            "POST\n/\n\n\
             content-type:application/json; charset=utf-8\n\
             host:cvm.tencentcloudapi.com\n\
             x-tc-action:describeinstances\n\n\
             content-type;host;x-tc-action\n\
             35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(signed_headers, "content-type;host;x-tc-action");
        assert_eq!(
            string_to_sign(1_551_113_065, "2019-02-25", "cvm", &canonical),
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        assert_eq!(
            hex::encode(hmac_sha256(
                format!("TC3{secret_key}").as_bytes(),
                b"2019-02-25"
            )),
            "da98fb70dcf6b112dc21038d1eeeb3a95c74b4dcb12c1131f864f6066bd02be0"
        );
        assert_eq!(
            hex::encode(signing_key(&secret_key, "2019-02-25", "cvm")),
            "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
        );
        let req = sign_request(&doc_request(), &secret_id, &secret_key);
        assert_eq!(
            req.header("authorization"),
            Some(
                "TC3-HMAC-SHA256 Credential=AKID********************************/2019-02-25/cvm/tc3_request, \
                 SignedHeaders=content-type;host;x-tc-action, \
                 Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
            )
        );
        assert_eq!(req.header("x-tc-timestamp"), Some("1551113065"));
        assert_eq!(req.header("x-tc-action"), Some("DescribeInstances"));
        assert_eq!(req.header("x-tc-version"), Some("2017-03-12"));
        assert_eq!(req.header("x-tc-region"), Some("ap-guangzhou"));
        assert_eq!(req.header("content-type"), Some(CONTENT_TYPE));
        assert_eq!(req.url, "https://cvm.tencentcloudapi.com/");
        assert_eq!(req.body, DOC_PAYLOAD.as_bytes());
    }

    /// "Signature v3", English page (tencentcloud.com/document/api/1021/34193): the same
    /// request signed with `content-type;host` only and the `…EXAMPLE` credentials.
    #[test]
    fn reproduces_the_older_published_example() {
        let signed = [
            ("content-type", CONTENT_TYPE),
            ("host", "cvm.tencentcloudapi.com"),
        ];
        let (canonical, _) = canonical_request(&signed, DOC_PAYLOAD.as_bytes());
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            authorization(
                "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
                "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                "cvm",
                doc_time(),
                &signed,
                DOC_PAYLOAD.as_bytes(),
            ),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    /// The date is UTC: 1551113065 is 2019-02-26 00:44 in Beijing.
    #[test]
    fn credential_scope_uses_the_utc_date() {
        let req = sign_request(&doc_request(), "id", "key");
        assert!(
            req.header("authorization")
                .unwrap()
                .contains("/2019-02-25/cvm/tc3_request")
        );
    }

    /// A verifier written from the doc alone, as a mock server would check a request.
    fn verify(req: &SignedRequest, secret_key: &str) -> bool {
        let auth = req.header("authorization").unwrap_or_default();
        let Some(rest) = auth.strip_prefix("TC3-HMAC-SHA256 ") else {
            return false;
        };
        let (mut scope, mut signed_headers, mut signature) = ("", "", "");
        for part in rest.split(", ") {
            if let Some(v) = part.strip_prefix("Credential=") {
                scope = v.split_once('/').map(|(_, s)| s).unwrap_or("");
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed_headers = v;
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = v;
            }
        }
        let mut parts = scope.split('/');
        let (Some(date), Some(service)) = (parts.next(), parts.next()) else {
            return false;
        };
        let mut canonical_headers = String::new();
        for name in signed_headers.split(';') {
            let value = req.header(name).unwrap_or_default().trim().to_lowercase();
            canonical_headers.push_str(&format!("{name}:{value}\n"));
        }
        let canonical = format!(
            "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
            sha256_hex(&req.body)
        );
        let timestamp = req.header("x-tc-timestamp").unwrap_or_default();
        let sts = format!(
            "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
        let k_service = hmac_sha256(&k_date, service.as_bytes());
        let k_signing = hmac_sha256(&k_service, b"tc3_request");
        hmac_sha256_hex(&k_signing, sts.as_bytes()) == signature
    }

    #[test]
    fn send_sms_round_trip() {
        let numbers = vec!["+8613800138000".to_owned()];
        let params = vec!["磁盘".to_owned(), "95%".to_owned()];
        let sms = SendSms {
            sdk_app_id: "1400006666",
            sign_name: "监控中心",
            template_id: "1110",
            template_params: &params,
            phone_numbers: &numbers,
        };
        let req = sign_send_sms("ap-guangzhou", &sms, "AKIDtest", "secret", doc_time());
        assert!(verify(&req, "secret"));
        assert!(!verify(&req, "other"));
        let mut tampered = req.clone();
        tampered.body = String::from_utf8(tampered.body)
            .unwrap()
            .replace("13800138000", "13900139000")
            .into_bytes();
        assert!(!verify(&tampered, "secret"));

        assert_eq!(req.url, "https://sms.tencentcloudapi.com/");
        assert_eq!(req.header("x-tc-action"), Some("SendSms"));
        assert_eq!(req.header("x-tc-version"), Some("2021-01-11"));
        assert!(req.header("authorization").unwrap().contains(
            "/2019-02-25/sms/tc3_request, SignedHeaders=content-type;host;x-tc-action, "
        ));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["PhoneNumberSet"][0], "+8613800138000");
        assert_eq!(body["SmsSdkAppId"], "1400006666");
        assert_eq!(body["SignName"], "监控中心");
        assert_eq!(body["TemplateId"], "1110");
        assert_eq!(body["TemplateParamSet"][1], "95%");
    }

    fn status_set(entries: &[(&str, &str)]) -> String {
        let set: Vec<serde_json::Value> = entries
            .iter()
            .map(|(number, code)| {
                serde_json::json!({
                    "SerialNo": "5000:1045710669157053657849499619",
                    "PhoneNumber": number,
                    "Fee": 1,
                    "SessionContext": "",
                    "Code": code,
                    "Message": "msg",
                    "IsoCode": "CN",
                })
            })
            .collect();
        serde_json::json!({"Response": {"SendStatusSet": set, "RequestId": "a0aabda6"}}).to_string()
    }

    fn error(code: &str) -> String {
        serde_json::json!({"Response": {"Error": {"Code": code, "Message": "msg"}, "RequestId": "r"}})
            .to_string()
    }

    #[test]
    fn classify_table() {
        let secs = |s| Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(s)),
        };
        let cases: Vec<(u16, String, Outcome)> = vec![
            (
                200,
                status_set(&[("+8613800138000", "Ok")]),
                Outcome::Delivered,
            ),
            (
                200,
                status_set(&[("+8613800138000", "Ok"), ("+8613900139000", "Ok")]),
                Outcome::Delivered,
            ),
            (
                200,
                error("LimitExceeded.PhoneNumberThirtySecondLimit"),
                secs(30),
            ),
            (200, error("LimitExceeded.DeliveryFrequencyLimit"), secs(60)),
            (
                200,
                error("LimitExceeded.PhoneNumberOneHourLimit"),
                secs(3600),
            ),
            (
                200,
                error("LimitExceeded.PhoneNumberDailyLimit"),
                secs(3600),
            ),
            (200, error("LimitExceeded.AppDailyLimit"), secs(3600)),
            (
                200,
                error("RequestLimitExceeded"),
                Outcome::RateLimited { retry_after: None },
            ),
            (
                200,
                error("RequestLimitExceeded.UinLimitExceeded"),
                Outcome::RateLimited { retry_after: None },
            ),
            (
                200,
                error("LimitExceeded.PhoneNumberCountLimit"),
                Outcome::Permanent("LimitExceeded.PhoneNumberCountLimit: msg".into()),
            ),
            (
                200,
                error("AuthFailure.SignatureFailure"),
                Outcome::Permanent("AuthFailure.SignatureFailure: msg".into()),
            ),
            (
                200,
                error("AuthFailure.SecretIdNotFound"),
                Outcome::Permanent("AuthFailure.SecretIdNotFound: msg".into()),
            ),
            (
                200,
                error("FailedOperation.SignatureIncorrectOrUnapproved"),
                Outcome::Permanent("FailedOperation.SignatureIncorrectOrUnapproved: msg".into()),
            ),
            (
                200,
                error("FailedOperation.TemplateIncorrectOrUnapproved"),
                Outcome::Permanent("FailedOperation.TemplateIncorrectOrUnapproved: msg".into()),
            ),
            (
                200,
                error("InvalidParameterValue.IncorrectPhoneNumber"),
                Outcome::Permanent("InvalidParameterValue.IncorrectPhoneNumber: msg".into()),
            ),
            (
                200,
                error("UnauthorizedOperation.SmsSdkAppIdVerifyFail"),
                Outcome::Permanent("UnauthorizedOperation.SmsSdkAppIdVerifyFail: msg".into()),
            ),
            (
                200,
                error("InvalidParameterValue.ContentLengthLimit"),
                Outcome::TooLong("InvalidParameterValue.ContentLengthLimit: msg".into()),
            ),
            (
                200,
                error("InvalidParameterValue.TemplateParameterLengthLimit"),
                Outcome::TooLong("InvalidParameterValue.TemplateParameterLengthLimit: msg".into()),
            ),
            (
                200,
                error("InternalError.Timeout"),
                Outcome::Transient("InternalError.Timeout: msg".into()),
            ),
            (
                200,
                error("InternalError"),
                Outcome::Transient("InternalError: msg".into()),
            ),
            // Per-number failures are classified like request-level ones.
            (
                200,
                status_set(&[("+8613800138000", "LimitExceeded.PhoneNumberDailyLimit")]),
                secs(3600),
            ),
            (
                200,
                status_set(&[
                    ("+8613800138000", "Ok"),
                    (
                        "+8613900139000",
                        "InvalidParameterValue.IncorrectPhoneNumber",
                    ),
                ]),
                Outcome::Permanent(
                    "+8613900139000: InvalidParameterValue.IncorrectPhoneNumber: msg".into(),
                ),
            ),
            (
                200,
                status_set(&[
                    ("+8613800138000", "InternalError.Timeout"),
                    (
                        "+8613900139000",
                        "LimitExceeded.PhoneNumberThirtySecondLimit",
                    ),
                ]),
                secs(30),
            ),
            // Transport-level failures and junk.
            (
                502,
                "<html>bad gateway</html>".into(),
                Outcome::Transient("http 502: <html>bad gateway</html>".into()),
            ),
            (
                200,
                "not json".into(),
                Outcome::Transient("reply without a Response: not json".into()),
            ),
            (
                200,
                r#"{"Response":{"RequestId":"r"}}"#.into(),
                Outcome::Transient(
                    r#"reply without Error or SendStatusSet: {"Response":{"RequestId":"r"}}"#
                        .into(),
                ),
            ),
            (
                403,
                "forbidden".into(),
                Outcome::Permanent("http 403: forbidden".into()),
            ),
        ];
        for (status, body, want) in cases {
            assert_eq!(classify(status, body.as_bytes()), want, "{status} {body}");
        }
    }
}
