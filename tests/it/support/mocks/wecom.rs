//! A WeCom (企业微信) group robot: `POST /cgi-bin/webhook/send?key=KEY`, no signing (the
//! key is the credential), replies HTTP 200 with `errcode`/`errmsg`.
//!
//! Rules (WeCom "群机器人配置说明" and "全局错误码"): a robot sends at most 20 messages a
//! minute (errcode 45009 beyond that); `text.content` is at most 2,048 bytes and
//! `markdown.content` at most 4,096 bytes of UTF-8 (errcode 40058 with an errmsg naming
//! the limit); an unknown key is errcode 93000, an unknown `msgtype` 40008, an empty
//! content 44004. Real errmsgs end with a `hint` and a link; so do these.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    Handled, Incoming, MockServer, RateLimiter, RateRule, Reply, Service, admit_robot_message, lock,
};

/// The largest `text.content`, in bytes.
pub(crate) const MAX_TEXT_BYTES: usize = 2048;
/// The largest `markdown.content` (and `markdown_v2.content`), in bytes.
pub(crate) const MAX_MARKDOWN_BYTES: usize = 4096;

const CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// WeCom's per-robot budget: 20 messages in any minute, no block beyond the window.
pub(crate) fn default_rate_rule() -> RateRule {
    RateRule {
        budget: 20,
        window: Duration::from_secs(60),
        block: Duration::ZERO,
        code: "45009".to_owned(),
        message: "api freq out of limit".to_owned(),
    }
}

/// Checks one message: `(errcode, errmsg)` on failure.
pub(crate) fn validate_message(message: &Value) -> Result<(), (i64, String)> {
    let msgtype = message.get("msgtype").and_then(Value::as_str).unwrap_or("");
    let limit = match msgtype {
        "text" => MAX_TEXT_BYTES,
        "markdown" | "markdown_v2" => MAX_MARKDOWN_BYTES,
        "image" | "news" | "file" | "voice" | "template_card" => return Ok(()),
        _ => return Err((40008, "invalid message type".to_owned())),
    };
    let content = message
        .get(msgtype)
        .and_then(|section| section.get("content"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if content.is_empty() {
        return Err((44004, "empty content".to_owned()));
    }
    if content.len() > limit {
        return Err((
            40058,
            format!(
                "{msgtype}.content exceed max length {limit}. Invalid input invalid Request Parameter"
            ),
        ));
    }
    Ok(())
}

fn with_hint(code: i64, errmsg: &str) -> String {
    let hint = fastrand::u64(1_000_000_000_000..10_000_000_000_000);
    format!(
        "{errmsg}, hint: [{hint}], more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
    )
}

fn reply(errcode: i64, errmsg: &str) -> Reply {
    let errmsg = if errcode == 0 {
        errmsg.to_owned()
    } else {
        with_hint(errcode, errmsg)
    };
    Reply::json(
        200,
        CONTENT_TYPE,
        &json!({"errcode": errcode, "errmsg": errmsg}),
    )
}

fn refuse(errcode: i64, errmsg: &str) -> Handled {
    Handled::rejected(errcode, reply(errcode, errmsg))
}

struct WeCom {
    keys: Mutex<HashSet<String>>,
    limiter: Mutex<RateLimiter>,
}

impl Service for WeCom {
    fn handle(&self, req: &Incoming, now: Instant) -> Handled {
        if req.path != "/cgi-bin/webhook/send" {
            return Handled::rejected(
                404,
                Reply::text(404, "text/html", "<html><body>404 Not Found</body></html>"),
            );
        }
        if req.method != "POST" {
            return refuse(43002, "require POST method");
        }
        let query = req.form_query();
        let Some(key) = query
            .iter()
            .find(|(name, _)| name == "key")
            .map(|(_, value)| value.as_str())
            .filter(|key| !key.is_empty())
        else {
            return refuse(40058, "invalid param 'key'");
        };
        if !lock(&self.keys).contains(key) {
            return refuse(93000, "invalid webhook url");
        }
        let Ok(message) = serde_json::from_slice::<Value>(&req.body) else {
            return refuse(40035, "invalid json request");
        };
        if let Err((code, msg)) = validate_message(&message) {
            return refuse(code, &msg);
        }
        admit_robot_message(&self.limiter, key, now, 45009, reply)
    }

    fn error_reply(&self, code: &str, message: &str) -> Reply {
        match code.parse::<i64>() {
            Ok(errcode) => reply(errcode, message),
            Err(_) => Reply::json(
                200,
                CONTENT_TYPE,
                &json!({"errcode": code, "errmsg": message}),
            ),
        }
    }
}

/// A running WeCom robot mock; see the module doc. Derefs to its [`MockServer`].
pub(crate) struct WeComMock {
    server: MockServer,
    service: Arc<WeCom>,
    key: String,
}

impl WeComMock {
    /// A robot whose webhook key is `key`.
    pub(crate) fn start(key: &str) -> WeComMock {
        let service = Arc::new(WeCom {
            keys: Mutex::new(HashSet::from([key.to_owned()])),
            limiter: Mutex::new(RateLimiter::new(vec![default_rate_rule()])),
        });
        let server = MockServer::start("wecom", Arc::clone(&service) as Arc<dyn Service>);
        WeComMock {
            server,
            service,
            key: key.to_owned(),
        }
    }

    /// `http://127.0.0.1:PORT/cgi-bin/webhook/send?key=KEY`.
    pub(crate) fn webhook_url(&self) -> String {
        self.webhook_url_for(&self.key)
    }

    /// The webhook URL for another key (valid only after [`WeComMock::add_robot`]).
    pub(crate) fn webhook_url_for(&self, key: &str) -> String {
        format!(
            "{}/cgi-bin/webhook/send?key={}",
            self.server.base_url(),
            super::rfc3986(key)
        )
    }

    /// Adds another robot; each robot has its own budget.
    pub(crate) fn add_robot(&self, key: &str) {
        lock(&self.service.keys).insert(key.to_owned());
    }

    /// `budget` messages per `window`, then blocked for `block` (zero: just the window).
    /// Resets the rate history.
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
}

impl Deref for WeComMock {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_limits_are_utf8_bytes() {
        let markdown =
            |content: String| json!({"msgtype": "markdown", "markdown": {"content": content}});
        // 1,365 three-byte characters are 4,095 bytes; one more ASCII byte is the limit.
        assert_eq!(validate_message(&markdown("告".repeat(1365) + "a")), Ok(()));
        let over = validate_message(&markdown("告".repeat(1366)));
        assert_eq!(over.as_ref().map_err(|e| e.0), Err(40058));
        assert!(over.unwrap_err().1.contains("exceed max length 4096"));

        let text = |content: String| json!({"msgtype": "text", "text": {"content": content}});
        assert_eq!(validate_message(&text("x".repeat(2048))), Ok(()));
        assert_eq!(
            validate_message(&text("x".repeat(2049))).map_err(|e| e.0),
            Err(40058)
        );
    }

    #[test]
    fn types_and_empty_content() {
        assert_eq!(
            validate_message(&json!({"msgtype": "bogus"})).map_err(|e| e.0),
            Err(40008)
        );
        assert_eq!(validate_message(&json!({})).map_err(|e| e.0), Err(40008));
        assert_eq!(
            validate_message(&json!({"msgtype": "text", "text": {}})).map_err(|e| e.0),
            Err(44004)
        );
        assert_eq!(
            validate_message(&json!({"msgtype": "image", "image": {"base64": "", "md5": ""}})),
            Ok(())
        );
    }
}
