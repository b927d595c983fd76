//! A Feishu (Lark) custom bot (自定义机器人) that verifies the 签名校验 signature, the
//! message shape, the size limit and the rate limits the way Feishu does, answering HTTP
//! 200 with `code`/`msg`/`data` whatever happened.
//!
//! Signature (Feishu "自定义机器人使用指南", 安全设置 → 签名校验): the body carries
//! `timestamp` (Unix seconds, a string, at most an hour off the server's clock) and
//! `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = ""))`.
//!
//! Codes: 0 success; 19001 unknown webhook token; 19021 bad or missing signature or a
//! stale timestamp; 19036 a body over 20,000 bytes (the documented limit); 19002 a body
//! that is not a known message; 9499 over 5 messages a second or 100 a minute per bot.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{
    Handled, Incoming, MockServer, RateLimiter, RateRule, Reply, Service, admit_robot_message, lock,
};

/// The largest body, by Feishu's documentation.
pub(crate) const MAX_BODY_BYTES: usize = 20_000;
/// How far `timestamp` may be from the server's clock, in seconds.
pub(crate) const TIMESTAMP_TOLERANCE_S: i64 = 60 * 60;

const CONTENT_TYPE: &str = "application/json; charset=utf-8";
const SIGN_FAIL: &str = "sign match fail or timestamp is not within one hour from current time";

/// Feishu's per-bot limits: 5 a second and 100 a minute.
pub(crate) fn default_rate_rules() -> Vec<RateRule> {
    vec![
        RateRule {
            budget: 5,
            window: Duration::from_secs(1),
            block: Duration::ZERO,
            code: "9499".to_owned(),
            message: "too many request".to_owned(),
        },
        RateRule {
            budget: 100,
            window: Duration::from_secs(60),
            block: Duration::ZERO,
            code: "9499".to_owned(),
            message: "too many request".to_owned(),
        },
    ]
}

/// The signature Feishu expects for `timestamp` (as sent, a decimal string).
pub(crate) fn expected_sign(secret: &str, timestamp: &str) -> String {
    let key = format!("{timestamp}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(super::hmac_sha256(key.as_bytes(), b""))
}

fn reply(code: i64, msg: &str) -> Reply {
    Reply::json(
        200,
        CONTENT_TYPE,
        &json!({"code": code, "data": {}, "msg": msg}),
    )
}

fn refuse(code: i64, msg: &str) -> Handled {
    Handled::rejected(code, reply(code, msg))
}

/// Checks the message fields: a known `msg_type` with its content.
fn validate_message(message: &Value) -> Result<(), (i64, String)> {
    let msg_type = message
        .get("msg_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let field = match msg_type {
        "text" | "post" | "image" | "share_chat" => "content",
        "interactive" => "card",
        _ => {
            return Err((
                19002,
                format!("params error, msg_type `{msg_type}` unknown"),
            ));
        }
    };
    if message.get(field).is_none_or(Value::is_null) {
        return Err((19002, format!("params error, {field} is required")));
    }
    Ok(())
}

struct Feishu {
    /// Webhook token → its secret, if the bot has 签名校验 on.
    bots: Mutex<HashMap<String, Option<String>>>,
    limiter: Mutex<RateLimiter>,
}

impl Service for Feishu {
    fn handle(&self, req: &Incoming, now: Instant) -> Handled {
        let Some(token) = req.path.strip_prefix("/open-apis/bot/v2/hook/") else {
            return Handled::rejected(404, Reply::text(404, "text/plain", "404 page not found"));
        };
        if req.method != "POST" {
            return refuse(19002, "params error, method must be POST");
        }
        let Some(secret) = lock(&self.bots).get(token).cloned() else {
            return refuse(
                19001,
                "param invalid: incoming webhook access token invalid",
            );
        };
        if req.body.len() > MAX_BODY_BYTES {
            return refuse(19036, "request body exceeds the size limit");
        }
        let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
            return refuse(19002, "params error, body is not JSON");
        };
        if let Some(secret) = secret {
            let timestamp = message
                .get("timestamp")
                .and_then(Value::as_str)
                .unwrap_or("");
            let sign = message.get("sign").and_then(Value::as_str).unwrap_or("");
            let fresh = timestamp
                .parse::<i64>()
                .is_ok_and(|ts| (req.received_at.timestamp() - ts).abs() <= TIMESTAMP_TOLERANCE_S);
            if !fresh || sign != expected_sign(&secret, timestamp) {
                return refuse(19021, SIGN_FAIL);
            }
        }
        if let Err((code, msg)) = validate_message(&message) {
            return refuse(code, &msg);
        }
        admit_robot_message(&self.limiter, token, now, 9499, |code, msg| {
            reply(code, if code == 0 { "success" } else { msg })
        })
    }

    fn error_reply(&self, code: &str, message: &str) -> Reply {
        let code = code
            .parse::<i64>()
            .map_or_else(|_| json!(code), |n| json!(n));
        Reply::json(
            200,
            CONTENT_TYPE,
            &json!({"code": code, "data": {}, "msg": message}),
        )
    }
}

/// A running Feishu bot mock; see the module doc. Derefs to its [`MockServer`].
pub(crate) struct FeishuMock {
    server: MockServer,
    service: Arc<Feishu>,
    token: String,
}

impl FeishuMock {
    /// A bot at webhook `token`, with 签名校验 when `secret` is given.
    pub(crate) fn start(token: &str, secret: Option<&str>) -> FeishuMock {
        let service = Arc::new(Feishu {
            bots: Mutex::new(HashMap::from([(
                token.to_owned(),
                secret.map(str::to_owned),
            )])),
            limiter: Mutex::new(RateLimiter::new(default_rate_rules())),
        });
        let server = MockServer::start("feishu", Arc::clone(&service) as Arc<dyn Service>);
        FeishuMock {
            server,
            service,
            token: token.to_owned(),
        }
    }

    /// `http://127.0.0.1:PORT/open-apis/bot/v2/hook/TOKEN`.
    pub(crate) fn webhook_url(&self) -> String {
        self.webhook_url_for(&self.token)
    }

    /// The webhook URL of another token (valid only after [`FeishuMock::add_bot`]).
    pub(crate) fn webhook_url_for(&self, token: &str) -> String {
        format!("{}/open-apis/bot/v2/hook/{token}", self.server.base_url())
    }

    pub(crate) fn add_bot(&self, token: &str, secret: Option<&str>) {
        lock(&self.service.bots).insert(token.to_owned(), secret.map(str::to_owned));
    }

    /// `budget` messages per `window`, then blocked for `block`. Resets the history.
    pub(crate) fn set_rate_limit(&self, budget: usize, window: Duration, block: Duration) {
        let rule = RateRule {
            budget,
            window,
            block,
            code: "9499".to_owned(),
            message: "too many request".to_owned(),
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
}

impl Deref for FeishuMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same vector as lookout's signer, from Feishu's documented Python snippet.
    #[test]
    fn signature_vector() {
        assert_eq!(
            expected_sign("feishu-secret", "1700000000"),
            "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="
        );
    }

    #[test]
    fn message_shapes() {
        assert!(validate_message(&json!({"msg_type": "interactive", "card": {}})).is_ok());
        assert!(validate_message(&json!({"msg_type": "text", "content": {"text": "x"}})).is_ok());
        assert_eq!(
            validate_message(&json!({"msg_type": "interactive"})).map_err(|e| e.0),
            Err(19002)
        );
        assert_eq!(
            validate_message(&json!({"msg_type": "markdown"})).map_err(|e| e.0),
            Err(19002)
        );
    }
}
