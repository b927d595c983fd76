//! Aliyun SMS `SendSms` (API version 2017-05-25): the V3 request signature
//! `ACS3-HMAC-SHA256`, the SendSms query, and `classify` for its replies.
//!
//! # Signature (V3)
//!
//! Sources, read 2026: Alibaba Cloud "Request syntax and signature method V3"
//! (help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature, English
//! at alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature)
//! and the official SDK's signer (`aliyun/darabonba-openapi-util`,
//! `python/alibabacloud_openapi_util/client.py`, `get_authorization`).
//!
//! ```text
//! CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
//!                    SignedHeaders \n hex(sha256(body))
//! StringToSign     = "ACS3-HMAC-SHA256" \n hex(sha256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))
//! Authorization    = ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=…,Signature=…
//! ```
//!
//! * CanonicalURI is `/` for RPC-style APIs such as SendSms.
//! * CanonicalQuery: parameters sorted by name, names and values RFC 3986-encoded (`%20`,
//!   `%2A`, `~` kept), joined as `k=v` with `&`; an empty value still gets its `=`.
//! * CanonicalHeaders: `host`, `content-type` and every `x-acs-*` header, names lowercase,
//!   values trimmed, sorted, each `name:value\n`. The doc asks for every header except
//!   `Authorization` to be signed; this signer sends no others.
//! * SignedHeaders: those names joined with `;`.
//!
//! # SendSms
//!
//! The official SDK (`alibabacloud-dysmsapi20170525`, `send_sms_with_options`) calls
//! SendSms as an RPC-style `POST /` with `PhoneNumbers`, `SignName`, `TemplateCode` and
//! `TemplateParam` in the query string and no body, so the body hash is that of the empty
//! string. `TemplateParam` is a JSON object whose values must all be strings.
//!
//! # Replies
//!
//! Sources: Aliyun SMS "API 错误码" (help.aliyun.com/document_detail/101346.html) and the
//! OpenAPI gateway's common errors. Business errors come back as HTTP 200 with
//! `{"Code": "...", "Message": "..."}`; `Code == "OK"` is success. Gateway errors
//! (signature, access key, throttling) come back with a 4xx/5xx status and the same shape.
//!
//! | Code | Outcome |
//! |---|---|
//! | `OK` | delivered |
//! | `isv.BUSINESS_LIMIT_CONTROL` (per-number minute/hour/day flow control) | rate limited: 60 s, 1 h, or 1 h for the daily level |
//! | `isv.DAY_LIMIT_CONTROL` (the account's daily cap set in the console) | rate limited, 1 h |
//! | `Throttling`, `Throttling.*` (API call rate) | rate limited, outbox default |
//! | `isv.PARAM_LENGTH_LIMIT` (a template variable too long) | too long |
//! | `InternalError`, `ServiceUnavailable`, `isp.SYSTEM_ERROR`, `SignatureNonceUsed`, any unknown code with 5xx | transient |
//! | everything else — `InvalidAccessKeyId.*`, `SignatureDoesNotMatch`, `IncompleteSignature`, `InvalidTimeStamp.Expired`, `isv.SMS_SIGNATURE_ILLEGAL`, `isv.SMS_TEMPLATE_ILLEGAL`, `isv.MOBILE_NUMBER_ILLEGAL`, `isv.TEMPLATE_PARAMS_ILLEGAL` (forbidden words, not length), `isv.AMOUNT_NOT_ENOUGH`, `isv.OUT_OF_SERVICE`, `isv.MONTH_LIMIT_CONTROL` (needs a human to raise the cap), `isp.RAM_PERMISSION_DENY` … | permanent |

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use super::outcome::{Outcome, by_status, snippet};
use super::sign::{SignedRequest, hmac_sha256_hex, percent_encode, sha256_hex, split_endpoint};
use super::{ChannelKind, Compose, Defaults, Delivery, Error, Message, Shown, http, sms};
use crate::configfile::{Checker, Secret};

/// Each template variable at most this many characters.
pub const PARAM_MAX_CHARS: usize = 35;

/// `type: aliyun_sms` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<String>,
    pub access_key_secret_file: Option<String>,
    pub sign_name: Option<String>,
    pub template_code: Option<String>,
    #[serde(default)]
    pub template_params: BTreeMap<String, String>,
    #[serde(default)]
    pub phone_numbers: Vec<String>,
}

/// Aliyun SMS to a list of numbers, one SendSms call per number.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub sign_name: String,
    pub template_code: String,
    /// Variable name → minijinja template over the notification.
    pub template_params: BTreeMap<String, String>,
    pub phone_numbers: Vec<String>,
}

/// One message's payload: the number and the rendered variables.
#[derive(Debug, Serialize, Deserialize)]
struct Sms {
    phone: String,
    params: BTreeMap<String, String>,
}

impl ChannelKind for Config {
    const TYPE: &'static str = "aliyun_sms";
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
                    .unwrap_or("https://dysmsapi.aliyuncs.com"),
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
        let access_key_id = check.required(path, "access_key_id", raw.access_key_id.as_deref());
        let sign_name = check.required(path, "sign_name", raw.sign_name.as_deref());
        let template_code = check.required(path, "template_code", raw.template_code.as_deref());
        Some(Self {
            endpoint: endpoint?.expose().to_owned(),
            access_key_id: access_key_id?.to_owned(),
            access_key_secret: secret?,
            sign_name: sign_name?.to_owned(),
            template_code: template_code?.to_owned(),
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
            .map(|(name, template)| {
                let value = sms::param(name, template, compose.view, PARAM_MAX_CHARS)?;
                Ok((name.clone(), value))
            })
            .collect::<Result<BTreeMap<_, _>, Error>>()?;
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
        sms::show(message, "TemplateParam")
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
            phone_numbers: &phones,
            sign_name: &self.sign_name,
            template_code: &self.template_code,
            template_param: &sms.params,
        };
        let nonce = format!("{:032x}", fastrand::u128(..));
        let signed = sign_send_sms(
            &self.endpoint,
            &call,
            &self.access_key_id,
            self.access_key_secret.expose(),
            now,
            &nonce,
        );
        http::send_signed(client, signed, classify).await
    }
}

/// The SMS endpoint for mainland China.
pub const DEFAULT_ENDPOINT: &str = "dysmsapi.aliyuncs.com";
/// The SendSms action name.
pub const SEND_SMS_ACTION: &str = "SendSms";
/// The API version SendSms is called with.
pub const SEND_SMS_VERSION: &str = "2017-05-25";
/// The signature algorithm name, also the first line of the string to sign.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// One OpenAPI call to sign. RPC style: `POST /`, parameters in the query string.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The endpoint host, e.g. [`DEFAULT_ENDPOINT`], or a URL `scheme://host[:port]`.
    pub endpoint: &'a str,
    /// `x-acs-action`, e.g. [`SEND_SMS_ACTION`].
    pub action: &'a str,
    /// `x-acs-version`, e.g. [`SEND_SMS_VERSION`].
    pub version: &'a str,
    /// Query parameters; a `BTreeMap` so the order is already the canonical one.
    pub query: &'a BTreeMap<String, String>,
    /// The request body (empty for SendSms).
    pub body: &'a [u8],
    /// `content-type` of a non-empty body; signed when present.
    pub content_type: Option<&'a str>,
    /// The signing time, sent as `x-acs-date` (UTC, `yyyy-MM-ddTHH:mm:ssZ`). The gateway
    /// rejects a time more than 15 minutes off.
    pub date: DateTime<Utc>,
    /// `x-acs-signature-nonce`: unique per request, it guards against replay.
    pub nonce: &'a str,
}

/// Signs `req` with the AccessKey pair, returning the request to send as it is.
pub fn sign_request(
    req: &Request<'_>,
    access_key_id: &str,
    access_key_secret: &str,
) -> SignedRequest {
    let query = canonical_query(req.query);
    let (scheme, host) = split_endpoint(req.endpoint);
    let mut headers = vec![
        ("host".to_owned(), host.to_owned()),
        ("x-acs-action".to_owned(), req.action.trim().to_owned()),
        ("x-acs-content-sha256".to_owned(), sha256_hex(req.body)),
        ("x-acs-date".to_owned(), acs_date(req.date)),
        (
            "x-acs-signature-nonce".to_owned(),
            req.nonce.trim().to_owned(),
        ),
        ("x-acs-version".to_owned(), req.version.trim().to_owned()),
    ];
    if let Some(content_type) = req.content_type {
        headers.push(("content-type".to_owned(), content_type.trim().to_owned()));
    }
    headers.sort();

    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let canonical_request = format!(
        "POST\n/\n{query}\n{canonical_headers}\n{signed_headers}\n{}",
        sha256_hex(req.body)
    );
    let string_to_sign = format!("{ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()));
    let signature = hmac_sha256_hex(access_key_secret.as_bytes(), string_to_sign.as_bytes());
    headers.push((
        "authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
        ),
    ));

    let mut url = format!("{scheme}://{host}/");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    SignedRequest {
        method: "POST",
        url,
        headers,
        body: req.body.to_vec(),
    }
}

/// The parameters of one SendSms call.
#[derive(Debug, Clone, Copy)]
pub struct SendSms<'a> {
    /// Recipients; mainland numbers without a prefix, others with the country code. Send
    /// one number per call when per-number rate limits matter: the reply has one `Code`
    /// for the whole call.
    pub phone_numbers: &'a [String],
    /// The approved signature name (签名).
    pub sign_name: &'a str,
    /// The approved template code, e.g. `SMS_123456789`.
    pub template_code: &'a str,
    /// Template variables; omitted from the query when empty. Values are strings by type,
    /// as Aliyun requires.
    pub template_param: &'a BTreeMap<String, String>,
}

/// The SendSms query parameters: `PhoneNumbers` (comma-joined), `SignName`,
/// `TemplateCode` and, when there are variables, `TemplateParam` as a JSON object of
/// strings.
pub fn send_sms_query(sms: &SendSms<'_>) -> BTreeMap<String, String> {
    let mut query = BTreeMap::new();
    query.insert("PhoneNumbers".to_owned(), sms.phone_numbers.join(","));
    query.insert("SignName".to_owned(), sms.sign_name.to_owned());
    query.insert("TemplateCode".to_owned(), sms.template_code.to_owned());
    if !sms.template_param.is_empty() {
        query.insert(
            "TemplateParam".to_owned(),
            string_object(sms.template_param),
        );
    }
    query
}

/// Template variables as the JSON object of strings Aliyun's `TemplateParam` and
/// `TtsParam` take.
pub(super) fn string_object(params: &BTreeMap<String, String>) -> String {
    let object: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// Signs a SendSms call to `endpoint`.
pub fn sign_send_sms(
    endpoint: &str,
    sms: &SendSms<'_>,
    access_key_id: &str,
    access_key_secret: &str,
    date: DateTime<Utc>,
    nonce: &str,
) -> SignedRequest {
    let query = send_sms_query(sms);
    let req = Request {
        endpoint,
        action: SEND_SMS_ACTION,
        version: SEND_SMS_VERSION,
        query: &query,
        body: &[],
        content_type: None,
        date,
        nonce,
    };
    sign_request(&req, access_key_id, access_key_secret)
}

/// `x-acs-date`: ISO 8601 in UTC, seconds precision, `Z` suffix.
pub fn acs_date(date: DateTime<Utc>) -> String {
    date.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Sorted, RFC 3986-encoded `k=v` pairs joined with `&`.
fn canonical_query(query: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// How long a per-number flow-control block is waited out, by the level named in the
/// message (`触发分钟级流控`, `触发小时级流控`, `触发天级流控`).
fn business_limit_retry(message: &str) -> Duration {
    if message.contains("分钟") || message.to_ascii_lowercase().contains("minute") {
        Duration::from_secs(60)
    } else if message.contains('时') || message.contains('天') {
        // Hourly and daily blocks: look again in an hour rather than sleep for a day.
        Duration::from_secs(3600)
    } else {
        Duration::from_secs(60)
    }
}

/// Classifies a SendSms (or any Aliyun OpenAPI) reply, SingleCallByTts's too; see the
/// module doc for the table.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("Code"))
        .and_then(serde_json::Value::as_str);
    let Some(code) = code else {
        return by_status(status, body).unwrap_or_else(|| {
            Outcome::Transient(format!("reply without a Code: {}", snippet(body)))
        });
    };
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("Message"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let detail = || format!("{code}: {message}");

    match code {
        "OK" if (200..300).contains(&status) => Outcome::Delivered,
        "isv.BUSINESS_LIMIT_CONTROL" => Outcome::RateLimited {
            retry_after: Some(business_limit_retry(message)),
        },
        "isv.DAY_LIMIT_CONTROL" => Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        },
        c if c == "Throttling" || c.starts_with("Throttling.") => {
            Outcome::RateLimited { retry_after: None }
        }
        "isv.PARAM_LENGTH_LIMIT" => Outcome::TooLong(detail()),
        "InternalError" | "ServiceUnavailable" | "isp.SYSTEM_ERROR" | "SignatureNonceUsed" => {
            Outcome::Transient(detail())
        }
        _ if (500..600).contains(&status) => Outcome::Transient(detail()),
        _ => Outcome::Permanent(detail()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_date() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2023-10-26T10:22:32Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The fixed-value example of Alibaba Cloud's "Request syntax and signature method
    /// V3" page: ECS RunInstances (RPC style, parameters in the query), empty body.
    #[test]
    fn reproduces_the_published_v3_example() {
        let mut query = BTreeMap::new();
        query.insert(
            "ImageId".to_owned(),
            "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd".to_owned(),
        );
        query.insert("RegionId".to_owned(), "cn-shanghai".to_owned());
        assert_eq!(
            canonical_query(&query),
            "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
        );
        let req = Request {
            endpoint: "ecs.cn-shanghai.aliyuncs.com",
            action: "RunInstances",
            version: "2014-05-26",
            query: &query,
            body: b"",
            content_type: None,
            date: doc_date(),
            nonce: "3156853299f313e23d1673dc12e1703d",
        };
        let signed = sign_request(&req, "YourAccessKeyId", "YourAccessKeySecret");
        assert_eq!(
            signed.header("authorization"),
            Some(
                "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,\
                 SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;\
                 x-acs-signature-nonce;x-acs-version,\
                 Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
            )
        );
        assert_eq!(
            signed.header("x-acs-content-sha256"),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(signed.header("x-acs-date"), Some("2023-10-26T10:22:32Z"));
        assert_eq!(
            signed.url,
            "https://ecs.cn-shanghai.aliyuncs.com/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
        );
        assert_eq!(signed.method, "POST");
    }

    /// The intermediate value the doc publishes: hex(sha256(CanonicalRequest)).
    #[test]
    fn published_canonical_request_hash() {
        let canonical = "POST\n/\n\
            ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
            host:ecs.cn-shanghai.aliyuncs.com\n\
            x-acs-action:RunInstances\n\
            x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
            x-acs-date:2023-10-26T10:22:32Z\n\
            x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n\
            x-acs-version:2014-05-26\n\n\
            host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
    }

    /// A verifier written from the doc alone: rebuild the canonical request from what is
    /// on the wire (URL query, headers, body) and check the signature — what a mock
    /// gateway in `tests/it/support` will do.
    fn verify(req: &SignedRequest, secret: &str) -> bool {
        let auth = req.header("authorization").unwrap_or_default();
        let Some(rest) = auth.strip_prefix("ACS3-HMAC-SHA256 ") else {
            return false;
        };
        let mut signed_headers = "";
        let mut signature = "";
        for part in rest.split(',') {
            if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed_headers = v;
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = v;
            }
        }
        let query = req.url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut canonical_headers = String::new();
        for name in signed_headers.split(';') {
            let value = req.header(name).unwrap_or_default();
            canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
        }
        let canonical = format!(
            "POST\n/\n{query}\n{canonical_headers}\n{signed_headers}\n{}",
            sha256_hex(&req.body)
        );
        let sts = format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes()));
        req.header("x-acs-content-sha256") == Some(sha256_hex(&req.body).as_str())
            && hmac_sha256_hex(secret.as_bytes(), sts.as_bytes()) == signature
    }

    #[test]
    fn send_sms_round_trip() {
        let numbers = vec!["13800138000".to_owned()];
        let mut params = BTreeMap::new();
        params.insert("alert".to_owned(), "磁盘 使用率 95%".to_owned());
        params.insert("count".to_owned(), "3".to_owned());
        let sms = SendSms {
            phone_numbers: &numbers,
            sign_name: "监控中心",
            template_code: "SMS_123456789",
            template_param: &params,
        };
        let signed = sign_send_sms(
            DEFAULT_ENDPOINT,
            &sms,
            "LTAI-test",
            "test-secret",
            doc_date(),
            "nonce-1",
        );
        assert!(verify(&signed, "test-secret"));
        assert!(!verify(&signed, "other-secret"));

        // Tampering with any signed part breaks the signature.
        let mut tampered = signed.clone();
        tampered.url = tampered.url.replace("13800138000", "13900139000");
        assert!(!verify(&tampered, "test-secret"));

        assert!(signed.body.is_empty());
        assert_eq!(signed.header("x-acs-action"), Some("SendSms"));
        assert_eq!(signed.header("x-acs-version"), Some("2017-05-25"));
        assert!(signed.url.starts_with(
            "https://dysmsapi.aliyuncs.com/?PhoneNumbers=13800138000&SignName=%E7%9B%91"
        ));
        // RFC 3986, not form encoding: a space is %20 and the JSON is fully escaped.
        assert!(
            signed
                .url
                .contains("TemplateParam=%7B%22alert%22%3A%22%E7%A3%81%E7%9B%98%20"),
            "{}",
            signed.url
        );
        assert!(!signed.url.contains('+'));
    }

    #[test]
    fn template_param_values_are_strings() {
        let numbers = vec!["13800138000".to_owned(), "13900139000".to_owned()];
        let mut params = BTreeMap::new();
        params.insert("n".to_owned(), "42".to_owned());
        params.insert("q".to_owned(), "say \"hi\"".to_owned());
        let query = send_sms_query(&SendSms {
            phone_numbers: &numbers,
            sign_name: "s",
            template_code: "t",
            template_param: &params,
        });
        assert_eq!(query["PhoneNumbers"], "13800138000,13900139000");
        assert_eq!(query["TemplateParam"], r#"{"n":"42","q":"say \"hi\""}"#);

        let empty = BTreeMap::new();
        let query = send_sms_query(&SendSms {
            phone_numbers: &numbers,
            sign_name: "s",
            template_code: "t",
            template_param: &empty,
        });
        assert!(!query.contains_key("TemplateParam"));
    }

    #[test]
    fn content_type_is_signed_when_present() {
        let query = BTreeMap::new();
        let req = Request {
            endpoint: "example.aliyuncs.com",
            action: "A",
            version: "V",
            query: &query,
            body: br#"{"x":1}"#,
            content_type: Some("application/json"),
            date: doc_date(),
            nonce: "n",
        };
        let signed = sign_request(&req, "id", "secret");
        let auth = signed.header("authorization").unwrap();
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-acs-action;"),
            "{auth}"
        );
        assert_eq!(signed.url, "https://example.aliyuncs.com/");
        assert!(verify(&signed, "secret"));
    }

    #[test]
    fn canonical_query_encoding() {
        let mut query = BTreeMap::new();
        query.insert("b".to_owned(), "x y*~".to_owned());
        query.insert("a".to_owned(), String::new());
        query.insert("c d".to_owned(), "/".to_owned());
        assert_eq!(canonical_query(&query), "a=&b=x%20y%2A~&c%20d=%2F");
    }

    #[test]
    fn classify_table() {
        let min = Some(Duration::from_secs(60));
        let hour = Some(Duration::from_secs(3600));
        let cases: Vec<(u16, &str, Outcome)> = vec![
            (
                200,
                r#"{"Code":"OK","Message":"OK","BizId":"9006197469364984^0","RequestId":"F655A8D5"}"#,
                Outcome::Delivered,
            ),
            (
                200,
                r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控Permits:1"}"#,
                Outcome::RateLimited { retry_after: min },
            ),
            (
                200,
                r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发小时级流控Permits:5"}"#,
                Outcome::RateLimited { retry_after: hour },
            ),
            (
                200,
                r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发天级流控Permits:10"}"#,
                Outcome::RateLimited { retry_after: hour },
            ),
            (
                200,
                r#"{"Code":"isv.DAY_LIMIT_CONTROL","Message":"触发日发送限额"}"#,
                Outcome::RateLimited { retry_after: hour },
            ),
            (
                400,
                r#"{"Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#,
                Outcome::RateLimited { retry_after: None },
            ),
            (
                200,
                r#"{"Code":"isv.PARAM_LENGTH_LIMIT","Message":"参数超出长度限制"}"#,
                Outcome::TooLong("isv.PARAM_LENGTH_LIMIT: 参数超出长度限制".into()),
            ),
            (
                500,
                r#"{"Code":"InternalError","Message":"The request processing has failed due to some unknown error."}"#,
                Outcome::Transient(
                    "InternalError: The request processing has failed due to some unknown error."
                        .into(),
                ),
            ),
            (
                503,
                r#"{"Code":"ServiceUnavailable","Message":"busy"}"#,
                Outcome::Transient("ServiceUnavailable: busy".into()),
            ),
            (
                200,
                r#"{"Code":"isp.SYSTEM_ERROR","Message":"isp.SYSTEM_ERROR"}"#,
                Outcome::Transient("isp.SYSTEM_ERROR: isp.SYSTEM_ERROR".into()),
            ),
            (
                503,
                r#"{"Code":"SomethingNew","Message":"m"}"#,
                Outcome::Transient("SomethingNew: m".into()),
            ),
            (
                404,
                r#"{"Code":"InvalidAccessKeyId.NotFound","Message":"Specified access key is not found."}"#,
                Outcome::Permanent(
                    "InvalidAccessKeyId.NotFound: Specified access key is not found.".into(),
                ),
            ),
            (
                400,
                r#"{"Code":"SignatureDoesNotMatch","Message":"m"}"#,
                Outcome::Permanent("SignatureDoesNotMatch: m".into()),
            ),
            (
                400,
                r#"{"Code":"IncompleteSignature","Message":"m"}"#,
                Outcome::Permanent("IncompleteSignature: m".into()),
            ),
            (
                200,
                r#"{"Code":"isv.SMS_SIGNATURE_ILLEGAL","Message":"m"}"#,
                Outcome::Permanent("isv.SMS_SIGNATURE_ILLEGAL: m".into()),
            ),
            (
                200,
                r#"{"Code":"isv.SMS_TEMPLATE_ILLEGAL","Message":"m"}"#,
                Outcome::Permanent("isv.SMS_TEMPLATE_ILLEGAL: m".into()),
            ),
            (
                200,
                r#"{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"m"}"#,
                Outcome::Permanent("isv.MOBILE_NUMBER_ILLEGAL: m".into()),
            ),
            (
                200,
                r#"{"Code":"isv.TEMPLATE_PARAMS_ILLEGAL","Message":"m"}"#,
                Outcome::Permanent("isv.TEMPLATE_PARAMS_ILLEGAL: m".into()),
            ),
            (
                200,
                r#"{"Code":"isv.AMOUNT_NOT_ENOUGH","Message":"m"}"#,
                Outcome::Permanent("isv.AMOUNT_NOT_ENOUGH: m".into()),
            ),
            (
                200,
                r#"{"Code":"isv.MONTH_LIMIT_CONTROL","Message":"m"}"#,
                Outcome::Permanent("isv.MONTH_LIMIT_CONTROL: m".into()),
            ),
        ];
        for (status, body, want) in cases {
            assert_eq!(classify(status, body.as_bytes()), want, "{status} {body}");
        }
        // No JSON `Code`: the status decides; a 2xx without one is gateway junk.
        assert_eq!(
            classify(502, b"<html>bad gateway</html>").kind(),
            "transient"
        );
        assert_eq!(classify(200, b"<html>?</html>").kind(), "transient");
        assert_eq!(classify(200, b"{}").kind(), "transient");
        assert_eq!(classify(403, b"forbidden").kind(), "permanent");
        assert_eq!(classify(429, b"").kind(), "rate_limited");
        // "OK" only counts with a 2xx status.
        assert_eq!(classify(500, br#"{"Code":"OK"}"#).kind(), "transient");
    }
}
