//! DingTalk custom group robots (自定义机器人): the "加签" URL signature and `classify` for
//! the robot's replies, which report failure inside HTTP 200.
//!
//! # Signature
//!
//! `POST {webhook}&timestamp=TS&sign=S` with TS the current Unix time in milliseconds
//! (DingTalk rejects one more than an hour off) and
//! `S = urlencode(base64(HMAC-SHA256(key = secret, msg = TS + "\n" + secret)))`,
//! percent-encoded exactly once (SPEC §3; DingTalk "自定义机器人安全设置").
//!
//! # Replies
//!
//! `{"errcode": N, "errmsg": "..."}`, HTTP 200 whether or not the message was sent.
//! Codes, from DingTalk's robot documentation and error tables as quoted in the SPEC and by
//! users who hit them (DingTalk's own pages render client-side and could not be read):
//!
//! | errcode | errmsg (typical) | Outcome |
//! |---|---|---|
//! | 0 | `ok` | delivered |
//! | 130101 | `send too fast, exceed 20 times per minute` | rate limited, 10 min: a robot is limited to 20 messages a minute and then blocked for 10 minutes (自定义机器人 "调用频率限制") |
//! | 410100 | 发送速度太快而限流 | rate limited, 10 min (same limit, newer code) |
//! | 460101 | `message too long, exceed 20000 bytes` | too long |
//! | 101002 | (message too long, per the SPEC) | too long |
//! | -1 | 系统繁忙 | transient (global code: "retry later") |
//! | 310000 | `keywords not in content` / `sign not match` / `ip X not in whitelist` / `invalid timestamp` | permanent |
//! | 300001, 300005, 400101 | `token is not exist` | permanent |
//! | 400102 | `bot is stopped` | permanent |
//! | 400106, 400013 | robot does not exist / group dissolved | permanent |
//! | 40035, 43002, 43004, 400105 | missing parameter, not POST, bad content type, unsupported msgtype | permanent |
//! | any other | | permanent, with the errmsg |
//!
//! A 2xx body that is not such JSON is gateway junk and transient — except the anti-abuse
//! gate's `{"status": 1111, "wait": N, ...}`, seen when a robot is hammered, which is a
//! rate limit of N seconds. Non-2xx statuses: 429 rate limited, 408 and 5xx transient,
//! anything else permanent.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::mention::{Mention, RawMention};
use super::outcome::{Outcome, by_status, snippet};
use super::sign::{hmac_sha256, percent_encode};
use super::{
    ChannelKind, Compose, Defaults, Delivery, Error, Message, Shown, delivery, http, target_of,
};
use crate::alert::render::Part;
use crate::configfile::{Checker, Secret};

/// The whole request body after JSON encoding.
pub const MAX_BYTES: usize = 20_000;

/// `type: dingtalk` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub mention: Option<RawMention>,
    pub message_type: Option<String>,
}

/// A DingTalk robot.
#[derive(Debug, Clone)]
pub struct Config {
    /// The webhook URL with its `access_token`.
    pub url: Secret,
    /// The 加签 secret; without one the robot must use keywords or an IP allowlist.
    pub secret: Option<Secret>,
    pub mention: Mention,
    /// `markdown` (default) or `text` messages.
    pub markdown: bool,
}

impl ChannelKind for Config {
    const TYPE: &'static str = "dingtalk";
    const DEFAULTS: Defaults = Defaults::CHAT;
    const DELIVERY_KEYS: &'static [&'static str] = delivery::KEYS;
    type Raw = Raw;
    type Transport = reqwest::Client;

    fn validate(raw: &Raw, path: &str, check: &mut Checker<'_>) -> Option<Self> {
        let url = check.url(path, "url", raw.url.as_deref());
        let secret = check.secret(
            path,
            "secret",
            raw.secret.as_ref(),
            raw.secret_file.as_ref(),
        );
        let markdown = super::markdown(path, raw.message_type.as_deref(), check);
        Some(Self {
            url: url?,
            secret,
            mention: Mention::of(raw.mention.as_ref()),
            markdown,
        })
    }

    fn targets(&self) -> Vec<String> {
        vec![target_of(self.url.expose())]
    }

    fn compose(&self, compose: &Compose<'_>) -> Result<Vec<Message>, Error> {
        let at_all = self.mention.at_all(compose.view);
        let build = |part: &Part| body(self.markdown, part, &self.mention, at_all);
        compose.robot_messages(
            self.markdown,
            &mentions(&self.mention),
            MAX_BYTES,
            0,
            &target_of(self.url.expose()),
            &build,
        )
    }

    fn describe(&self, message: &Message) -> Shown {
        super::show_json(&message.payload)
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
        let url = match &self.secret {
            Some(secret) => signed_url(self.url.expose(), secret.expose(), now.timestamp_millis()),
            None => self.url.expose().to_owned(),
        };
        http::post_json(client, &url, &message.payload, classify).await
    }
}

/// DingTalk pings only mobiles that also appear as `@mobile` in the text.
fn mentions(mention: &Mention) -> String {
    let names: Vec<String> = mention
        .mobiles
        .iter()
        .chain(mention.user_ids.iter())
        .map(|m| format!("@{m}"))
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("\n\n{}", names.join(" "))
    }
}

/// The request body of one part.
fn body(markdown: bool, part: &Part, mention: &Mention, at_all: bool) -> serde_json::Value {
    let title = if part.total > 1 {
        format!("{}（{}/{}）", part.title, part.index, part.total)
    } else {
        part.title.clone()
    };
    let at =
        json!({ "atMobiles": mention.mobiles, "atUserIds": mention.user_ids, "isAtAll": at_all });
    if markdown {
        json!({ "msgtype": "markdown", "markdown": { "title": title, "text": part.text }, "at": at })
    } else {
        json!({ "msgtype": "text", "text": { "content": part.text }, "at": at })
    }
}

/// How long DingTalk blocks a robot that sent more than 20 messages in a minute.
pub const RATE_LIMIT_BLOCK: Duration = Duration::from_secs(10 * 60);

/// The signature for `timestamp_ms`: `base64(HMAC-SHA256(secret, "{timestamp_ms}\n{secret}"))`,
/// standard alphabet with padding, *not* URL-encoded — [`signed_url`] encodes it.
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    let string_to_sign = format!("{timestamp_ms}\n{secret}");
    let mac = hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// The webhook URL with `timestamp` and `sign` appended (`&` after an existing query,
/// `?` otherwise), the signature percent-encoded once with the RFC 3986 set: `+` → `%2B`,
/// `/` → `%2F`, `=` → `%3D`.
pub fn signed_url(base_url: &str, secret: &str, timestamp_ms: i64) -> String {
    let sep = match base_url.find('?') {
        None => "?",
        Some(_) if base_url.ends_with('?') || base_url.ends_with('&') => "",
        Some(_) => "&",
    };
    let sign = percent_encode(&sign(secret, timestamp_ms));
    format!("{base_url}{sep}timestamp={timestamp_ms}&sign={sign}")
}

/// Classifies a robot reply; see the module doc for the table.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    if let Some(outcome) = by_status(status, body) {
        return outcome;
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let Some(reply) = parsed.as_ref().filter(|v| v.is_object()) else {
        return Outcome::Transient(format!("reply is not JSON: {}", snippet(body)));
    };
    let Some(code) = reply.get("errcode").and_then(serde_json::Value::as_i64) else {
        if let Some(wait) = reply.get("wait").and_then(serde_json::Value::as_u64) {
            return Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(wait.max(1))),
            };
        }
        return Outcome::Transient(format!("reply without errcode: {}", snippet(body)));
    };
    let errmsg = reply
        .get("errmsg")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let detail = || format!("errcode {code}: {errmsg}");
    match code {
        0 => Outcome::Delivered,
        130_101 | 410_100 => Outcome::RateLimited {
            retry_after: Some(RATE_LIMIT_BLOCK),
        },
        460_101 | 101_002 => Outcome::TooLong(detail()),
        -1 => Outcome::Transient(detail()),
        _ => Outcome::Permanent(detail()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SIGN: &str = "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY=";

    /// The vector in SPEC §3.
    #[test]
    fn spec_vector() {
        assert_eq!(sign("secret", 1_700_000_000_000), SPEC_SIGN);
    }

    #[test]
    fn url_form_encodes_the_signature_once() {
        let encoded = "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D";
        assert_eq!(
            signed_url(
                "https://oapi.dingtalk.com/robot/send?access_token=abc",
                "secret",
                1_700_000_000_000
            ),
            format!(
                "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000&sign={encoded}"
            )
        );
        assert_eq!(
            signed_url("http://127.0.0.1:9/robot", "secret", 1_700_000_000_000),
            format!("http://127.0.0.1:9/robot?timestamp=1700000000000&sign={encoded}")
        );
        assert_eq!(
            signed_url("http://h/robot?", "secret", 1_700_000_000_000),
            format!("http://h/robot?timestamp=1700000000000&sign={encoded}")
        );
    }

    /// What a verifying mock does: take `timestamp` and `sign` from the query, decode the
    /// signature once, recompute it from the shared secret.
    #[test]
    fn round_trip() {
        let url = signed_url(
            "https://h/robot/send?access_token=t",
            "SEC0123",
            1_712_345_678_901,
        );
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut ts = None;
        let mut sig = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("timestamp", v)) => ts = v.parse::<i64>().ok(),
                Some(("sign", v)) => {
                    sig = Some(
                        percent_encoding::percent_decode_str(v)
                            .decode_utf8()
                            .unwrap()
                            .into_owned(),
                    );
                }
                _ => {}
            }
        }
        let (ts, sig) = (ts.unwrap(), sig.unwrap());
        assert_eq!(sig, sign("SEC0123", ts));
        assert_ne!(sig, sign("SEC0124", ts));
        assert!(!url.contains('+'));
    }

    #[test]
    fn classify_table() {
        let rl = Outcome::RateLimited {
            retry_after: Some(RATE_LIMIT_BLOCK),
        };
        let cases: Vec<(u16, &str, Outcome)> = vec![
            (200, r#"{"errcode":0,"errmsg":"ok"}"#, Outcome::Delivered),
            (200, r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#, rl.clone()),
            (200, r#"{"errcode":410100,"errmsg":"发送速度太快而限流"}"#, rl),
            (200, r#"{"errcode":460101,"errmsg":"message too long, exceed 20000 bytes"}"#,
                Outcome::TooLong("errcode 460101: message too long, exceed 20000 bytes".into())),
            (200, r#"{"errcode":101002,"errmsg":"too long"}"#, Outcome::TooLong("errcode 101002: too long".into())),
            (200, r#"{"errcode":-1,"errmsg":"系统繁忙"}"#, Outcome::Transient("errcode -1: 系统繁忙".into())),
            (200, r#"{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}"#,
                Outcome::Permanent("errcode 310000: sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]".into())),
            (200, r#"{"errcode":310000,"errmsg":"keywords not in content"}"#, Outcome::Permanent("errcode 310000: keywords not in content".into())),
            (200, r#"{"errcode":300001,"errmsg":"token is not exist"}"#, Outcome::Permanent("errcode 300001: token is not exist".into())),
            (200, r#"{"errcode":300005,"errmsg":"token is not exist"}"#, Outcome::Permanent("errcode 300005: token is not exist".into())),
            (200, r#"{"errcode":400102,"errmsg":"bot is stopped"}"#, Outcome::Permanent("errcode 400102: bot is stopped".into())),
            (200, r#"{"errcode":40035,"errmsg":"缺少参数 access_token"}"#, Outcome::Permanent("errcode 40035: 缺少参数 access_token".into())),
            (200, r#"{"errcode":987654,"errmsg":"new"}"#, Outcome::Permanent("errcode 987654: new".into())),
            (200, r#"{"status":1111,"wait":5,"source":"x5","punish":"deny"}"#, Outcome::RateLimited { retry_after: Some(Duration::from_secs(5)) }),
            (200, "<html>gateway</html>", Outcome::Transient("reply is not JSON: <html>gateway</html>".into())),
            (200, "", Outcome::Transient("reply is not JSON: (empty body)".into())),
            (200, "{}", Outcome::Transient("reply without errcode: {}".into())),
            (502, "bad gateway", Outcome::Transient("http 502: bad gateway".into())),
            (503, "", Outcome::Transient("http 503: (empty body)".into())),
            (408, "", Outcome::Transient("http 408: (empty body)".into())),
            (429, "", Outcome::RateLimited { retry_after: None }),
            (404, "not found", Outcome::Permanent("http 404: not found".into())),
        ];
        for (status, body, want) in cases {
            assert_eq!(classify(status, body.as_bytes()), want, "{status} {body}");
        }
    }
}
