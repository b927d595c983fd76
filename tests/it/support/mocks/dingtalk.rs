//! A DingTalk custom group robot (自定义机器人) that verifies the "加签" signature, the
//! message shape, the 20,000-byte limit and the 20-per-minute budget the way DingTalk does,
//! answering HTTP 200 with `errcode`/`errmsg` whatever happened.
//!
//! Signature (DingTalk "自定义机器人安全设置", SPEC §3): the webhook is called as
//! `POST /robot/send?access_token=T&timestamp=TS&sign=S` with TS in Unix milliseconds, at
//! most an hour off the server's clock, and
//! `S = urlencode(base64(HMAC-SHA256(key = secret, msg = TS + "\n" + secret)))`. The server
//! decodes the query once, form-style, so a signature must be percent-encoded exactly
//! once: a raw `+` arrives as a space and a double-encoded `%252B` as `%2B`, and both fail.
//!
//! Codes: 0 ok; 300001 unknown token; 310000 bad/missing signature or stale timestamp;
//! 460101 body over 20,000 bytes; 130101 over 20 messages in a minute, after which the
//! robot stays blocked for 10 minutes; 40035/43002/43004/400105 for a missing parameter, a
//! non-POST, a non-JSON content type and an unsupported `msgtype`.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{
    Handled, Incoming, MockServer, RateLimiter, RateRule, Reply, Service, admit_robot_message, lock,
};

/// The largest body DingTalk accepts.
pub(crate) const MAX_BODY_BYTES: usize = 20_000;
/// How far `timestamp` may be from the server's clock.
pub(crate) const TIMESTAMP_TOLERANCE_MS: i64 = 60 * 60 * 1000;
/// The message types a custom robot sends.
pub(crate) const MSGTYPES: [&str; 5] = ["text", "markdown", "link", "actionCard", "feedCard"];

const CONTENT_TYPE: &str = "application/json;charset=utf-8";
const SIGN_NOT_MATCH: &str =
    "description:机器人发送签名不匹配;solution:请确认签名和时间戳都放在调用的网址中，且密钥正确;";
const SIGN_EXPIRED: &str =
    "description:机器人发送签名过期;solution:签名生成时间和发送时间请保持在 1 小时以内;";

/// DingTalk's per-robot budget: 20 messages in any minute, then blocked for 10 minutes.
pub(crate) fn default_rate_rule() -> RateRule {
    RateRule {
        budget: 20,
        window: Duration::from_secs(60),
        block: Duration::from_secs(10 * 60),
        code: "130101".to_owned(),
        message: "send too fast, exceed 20 times per minute".to_owned(),
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignError {
    /// `timestamp` or `sign` is absent.
    Missing,
    /// `timestamp` is not an integer.
    Malformed,
    /// More than an hour off.
    Expired,
    /// The signature is not the one the secret gives.
    Mismatch,
}

/// The signature DingTalk expects for `timestamp` (as sent, a decimal string):
/// `base64(HMAC-SHA256(secret, timestamp + "\n" + secret))`, standard alphabet, padded.
pub(crate) fn expected_sign(secret: &str, timestamp: &str) -> String {
    let string_to_sign = format!("{timestamp}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(super::hmac_sha256(
        secret.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

/// Checks `timestamp` and `sign` as taken from a query decoded once (form rules).
pub(crate) fn check_sign(
    timestamp: Option<&str>,
    sign: Option<&str>,
    secret: &str,
    now_ms: i64,
) -> Result<(), SignError> {
    let (Some(timestamp), Some(sign)) = (timestamp, sign) else {
        return Err(SignError::Missing);
    };
    let ts: i64 = timestamp.parse().map_err(|_| SignError::Malformed)?;
    if (now_ms - ts).abs() > TIMESTAMP_TOLERANCE_MS {
        return Err(SignError::Expired);
    }
    if sign == expected_sign(secret, timestamp) {
        Ok(())
    } else {
        Err(SignError::Mismatch)
    }
}

/// Checks one message body (already parsed) the way the robot does: a known `msgtype`
/// and the fields that type needs. Errors are `(errcode, errmsg)`.
pub(crate) fn validate_message(message: &Value) -> Result<(), (i64, String)> {
    let Some(msgtype) = message.get("msgtype").and_then(Value::as_str) else {
        return Err((40035, "缺少参数 msgtype".to_owned()));
    };
    let required: &[&str] = match msgtype {
        "text" => &["content"],
        "markdown" => &["title", "text"],
        "link" => &["title", "text", "messageUrl"],
        "actionCard" => &["title", "text"],
        "feedCard" => &["links"],
        _ => return Err((400105, format!("不支持的消息类型: {msgtype}"))),
    };
    let Some(section) = message.get(msgtype).filter(|v| v.is_object()) else {
        return Err((40035, format!("缺少参数 {msgtype}")));
    };
    for field in required {
        let present = match section.get(*field) {
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(items)) => !items.is_empty(),
            _ => false,
        };
        if !present {
            return Err((40035, format!("缺少参数 {msgtype}.{field}")));
        }
    }
    if let Some(at) = message.get("at") {
        let mobiles_ok = at
            .get("atMobiles")
            .is_none_or(|m| m.as_array().is_some_and(|a| a.iter().all(Value::is_string)));
        if !at.is_object() || !mobiles_ok {
            return Err((40035, "参数 at 格式错误".to_owned()));
        }
    }
    Ok(())
}

/// The mobiles a message actually pings: those in `at.atMobiles` that — for `markdown`
/// and `actionCard` — also appear as `@mobile` in the text (DingTalk adds the mention to
/// plain `text` messages itself).
pub(crate) fn pinged_mobiles(message: &Value) -> Vec<String> {
    let mobiles: Vec<String> = message
        .pointer("/at/atMobiles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let text = match message.get("msgtype").and_then(Value::as_str) {
        Some("text") => return mobiles,
        Some(kind @ ("markdown" | "actionCard")) => message
            .pointer(&format!("/{kind}/text"))
            .and_then(Value::as_str)
            .unwrap_or(""),
        _ => return Vec::new(),
    };
    mobiles
        .into_iter()
        .filter(|m| text.contains(&format!("@{m}")))
        .collect()
}

struct DingTalk {
    /// access_token → secret (None: the robot does not use 加签).
    robots: Mutex<HashMap<String, Option<String>>>,
    limiter: Mutex<RateLimiter>,
}

fn reply(errcode: i64, errmsg: &str) -> Reply {
    Reply::json(
        200,
        CONTENT_TYPE,
        &json!({"errcode": errcode, "errmsg": errmsg}),
    )
}

fn refuse(errcode: i64, errmsg: &str) -> Handled {
    Handled::rejected(errcode, reply(errcode, errmsg))
}

impl Service for DingTalk {
    fn handle(&self, req: &Incoming, now: Instant) -> Handled {
        if req.path != "/robot/send" {
            return Handled::rejected(
                404,
                Reply::text(404, "text/html", "<html><body>404 Not Found</body></html>"),
            );
        }
        if req.method != "POST" {
            return refuse(43002, "需要POST请求");
        }
        let query = req.form_query();
        let param = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let Some(token) = param("access_token").filter(|t| !t.is_empty()) else {
            return refuse(40035, "缺少参数 access_token");
        };
        let Some(secret) = lock(&self.robots).get(token).cloned() else {
            return refuse(300001, "token is not exist");
        };
        if let Some(secret) = secret {
            let now_ms = req.received_at.timestamp_millis();
            match check_sign(param("timestamp"), param("sign"), &secret, now_ms) {
                Ok(()) => {}
                Err(SignError::Expired) => return refuse(310000, SIGN_EXPIRED),
                Err(_) => return refuse(310000, SIGN_NOT_MATCH),
            }
        }
        let json_content = req
            .header("content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("application/json"));
        if !json_content {
            return refuse(43004, "需要HTTP Header的Content-Type为application/json");
        }
        if req.body.len() > MAX_BODY_BYTES {
            return refuse(460101, "message too long, exceed 20000 bytes");
        }
        let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
            return refuse(40035, "缺少参数 json");
        };
        if let Err((code, msg)) = validate_message(&message) {
            return refuse(code, &msg);
        }
        admit_robot_message(&self.limiter, token, now, 130101, reply)
    }

    fn error_reply(&self, code: &str, message: &str) -> Reply {
        let errcode = code
            .parse::<i64>()
            .map_or_else(|_| json!(code), |n| json!(n));
        Reply::json(
            200,
            CONTENT_TYPE,
            &json!({"errcode": errcode, "errmsg": message}),
        )
    }
}

/// A running DingTalk robot mock; see the module doc. Derefs to its [`MockServer`].
pub(crate) struct DingTalkMock {
    server: MockServer,
    service: Arc<DingTalk>,
    token: String,
}

impl DingTalkMock {
    /// A robot with `access_token`, signing with `secret` when given ("加签" on).
    pub(crate) fn start(access_token: &str, secret: Option<&str>) -> DingTalkMock {
        let mut robots = HashMap::new();
        robots.insert(access_token.to_owned(), secret.map(str::to_owned));
        let service = Arc::new(DingTalk {
            robots: Mutex::new(robots),
            limiter: Mutex::new(RateLimiter::new(vec![default_rate_rule()])),
        });
        let server = MockServer::start("dingtalk", Arc::clone(&service) as Arc<dyn Service>);
        DingTalkMock {
            server,
            service,
            token: access_token.to_owned(),
        }
    }

    /// The webhook URL as DingTalk shows it: `http://127.0.0.1:PORT/robot/send?access_token=T`.
    pub(crate) fn webhook_url(&self) -> String {
        self.webhook_url_for(&self.token)
    }

    /// The webhook URL of another robot on the same mock (see [`DingTalkMock::add_robot`]).
    pub(crate) fn webhook_url_for(&self, access_token: &str) -> String {
        format!(
            "{}/robot/send?access_token={}",
            self.server.base_url(),
            super::rfc3986(access_token)
        )
    }

    /// Adds another robot; each robot has its own rate budget.
    pub(crate) fn add_robot(&self, access_token: &str, secret: Option<&str>) {
        lock(&self.service.robots).insert(access_token.to_owned(), secret.map(str::to_owned));
    }

    /// Shrinks (or widens) the budget: `budget` messages per `window`, then blocked for
    /// `block` (zero: no block beyond the window). Resets the rate history.
    pub(crate) fn set_rate_limit(&self, budget: usize, window: Duration, block: Duration) {
        let rule = RateRule {
            budget,
            window,
            block,
            ..default_rate_rule()
        };
        lock(&self.service.limiter).set_rules(vec![rule]);
    }

    /// The bodies of the messages delivered, oldest first.
    pub(crate) fn messages(&self) -> Vec<Value> {
        self.server
            .accepted()
            .into_iter()
            .filter_map(|r| r.json)
            .collect()
    }

    /// The bodies of the messages delivered to the robot `access_token`, oldest first.
    pub(crate) fn messages_to(&self, access_token: &str) -> Vec<Value> {
        let query = format!("access_token={}", super::rfc3986(access_token));
        self.server
            .accepted()
            .into_iter()
            .filter(|r| r.path_and_query().contains(&query))
            .filter_map(|r| r.json)
            .collect()
    }

    /// The text of each delivered message (markdown or plain), oldest first.
    pub(crate) fn texts(&self) -> Vec<String> {
        self.messages()
            .iter()
            .map(|m| {
                m["markdown"]["text"]
                    .as_str()
                    .or(m["text"]["content"].as_str())
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// Waits up to `within` until every name shows in some delivered message; on a
    /// timeout the failure tells how many are missing and `context()` (logs).
    pub(crate) fn wait_for_all(
        &self,
        names: &[String],
        within: Duration,
        context: impl Fn() -> String,
    ) {
        super::super::poll_until(within, "every notification delivered", || {
            let texts = self.texts();
            let missing = names
                .iter()
                .filter(|n| !texts.iter().any(|t| t.contains(n.as_str())))
                .count();
            if missing == 0 {
                Ok(())
            } else {
                Err(format!("{missing} missing\n{}", context()))
            }
        });
    }

    /// How a storm's alerts show in the delivered messages: (alerts shown, alerts
    /// counted in a digest's "…另有 N 条告警"). An alert shows when any message contains
    /// one of its `marks` (its id line or name in a message of its own, the first eight
    /// digits of its fingerprint in a digest's line).
    pub(crate) fn alerts_represented(&self, marks: &[Vec<String>]) -> (usize, usize) {
        let texts = self.texts();
        let omitted = texts
            .iter()
            .filter_map(|t| t.split("…另有 ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            .sum();
        let shown = marks
            .iter()
            .filter(|marks| {
                marks
                    .iter()
                    .any(|mark| texts.iter().any(|t| t.contains(mark.as_str())))
            })
            .count();
        (shown, omitted)
    }

    /// For each delivered message, the mobiles it actually pings.
    pub(crate) fn pings(&self) -> Vec<Vec<String>> {
        self.messages().iter().map(pinged_mobiles).collect()
    }
}

impl Deref for DingTalkMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector in SPEC §3.
    #[test]
    fn spec_vector() {
        assert_eq!(
            expected_sign("secret", "1700000000000"),
            "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="
        );
    }

    #[test]
    fn the_query_must_be_encoded_exactly_once() {
        let now = 1_700_000_000_000;
        let sign = |raw: &str| {
            let query = format!("access_token=t&timestamp=1700000000000&sign={raw}");
            let pairs = super::super::parse_form(&query);
            let get = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            check_sign(
                get("timestamp").as_deref(),
                get("sign").as_deref(),
                "secret",
                now,
            )
        };
        assert_eq!(
            sign("OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"),
            Ok(())
        );
        // `/` and `=` may stay raw in a query; only `+` changes meaning.
        assert_eq!(
            sign("OuzzJR5%2BxZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="),
            Ok(())
        );
        assert_eq!(
            sign("OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="),
            Err(SignError::Mismatch),
            "a raw + decodes to a space"
        );
        assert_eq!(
            sign("OuzzJR5%252BxZ4%252FEYwqtNt6sMYZQMTa%252FHEGvc9miJe7XzY%253D"),
            Err(SignError::Mismatch),
            "double encoding"
        );
    }

    #[test]
    fn timestamps_and_missing_parts() {
        let ts = "1700000000000";
        let good = expected_sign("s", ts);
        let hour = TIMESTAMP_TOLERANCE_MS;
        let base = 1_700_000_000_000;
        assert_eq!(check_sign(Some(ts), Some(&good), "s", base + hour), Ok(()));
        assert_eq!(check_sign(Some(ts), Some(&good), "s", base - hour), Ok(()));
        assert_eq!(
            check_sign(Some(ts), Some(&good), "s", base + hour + 1),
            Err(SignError::Expired)
        );
        assert_eq!(
            check_sign(Some(ts), Some(&good), "s", base - hour - 1),
            Err(SignError::Expired)
        );
        assert_eq!(
            check_sign(None, Some(&good), "s", base),
            Err(SignError::Missing)
        );
        assert_eq!(
            check_sign(Some(ts), None, "s", base),
            Err(SignError::Missing)
        );
        assert_eq!(
            check_sign(Some("soon"), Some(&good), "s", base),
            Err(SignError::Malformed)
        );
        assert_eq!(
            check_sign(Some(ts), Some(&good), "t", base),
            Err(SignError::Mismatch)
        );
    }

    #[test]
    fn message_shapes() {
        let ok = [
            json!({"msgtype": "text", "text": {"content": "hi"}}),
            json!({"msgtype": "markdown", "markdown": {"title": "t", "text": "x"}, "at": {"atMobiles": ["138"]}}),
            json!({"msgtype": "link", "link": {"title": "t", "text": "x", "messageUrl": "http://x"}}),
            json!({"msgtype": "actionCard", "actionCard": {"title": "t", "text": "x"}}),
            json!({"msgtype": "feedCard", "feedCard": {"links": [{}]}}),
        ];
        for message in ok {
            assert_eq!(validate_message(&message), Ok(()), "{message}");
        }
        let bad = [
            (json!({"text": {"content": "hi"}}), 40035),
            (json!({"msgtype": "image"}), 400105),
            (json!({"msgtype": "text"}), 40035),
            (json!({"msgtype": "text", "text": {"content": ""}}), 40035),
            (
                json!({"msgtype": "markdown", "markdown": {"text": "x"}}),
                40035,
            ),
            (
                json!({"msgtype": "markdown", "markdown": {"title": "t"}}),
                40035,
            ),
            (
                json!({"msgtype": "text", "text": {"content": "x"}, "at": {"atMobiles": [138]}}),
                40035,
            ),
        ];
        for (message, code) in bad {
            assert_eq!(
                validate_message(&message).map_err(|e| e.0),
                Err(code),
                "{message}"
            );
        }
    }

    #[test]
    fn markdown_mentions_need_the_mobile_in_the_text() {
        let markdown = json!({
            "msgtype": "markdown",
            "markdown": {"title": "t", "text": "disk full @13800138000"},
            "at": {"atMobiles": ["13800138000", "13900139000"]}
        });
        assert_eq!(pinged_mobiles(&markdown), vec!["13800138000".to_owned()]);
        let text = json!({
            "msgtype": "text",
            "text": {"content": "disk full"},
            "at": {"atMobiles": ["13900139000"]}
        });
        assert_eq!(pinged_mobiles(&text), vec!["13900139000".to_owned()]);
    }
}
