//! Feishu / Lark custom bots (自定义机器人): an interactive card per message part, the
//! 签名校验 signature, and `classify` for the bot's replies.
//!
//! ```yaml
//! ops-feishu:
//!   type: feishu
//!   url: https://open.feishu.cn/open-apis/bot/v2/hook/${FEISHU_HOOK}
//!   secret: ${FEISHU_SECRET}            # 签名校验; optional (or secret_file)
//!   mention: { user_ids: [ou_xxx], all_on_severity: [critical] }
//! ```
//!
//! # Request
//!
//! `POST url` with `{"timestamp": "<unix seconds>", "sign": S, "msg_type": "interactive",
//! "card": …}`, where `S = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message =
//! ""))` — the secret is in the key and the message is empty, unlike DingTalk. Feishu
//! refuses a timestamp more than an hour off. The card has a header coloured by severity
//! and one markdown element with the rendered text; mentions are `<at id=ou_xxx></at>`
//! and `<at id=all></at>` in that text. A request is kept within 20,000 bytes (the
//! documented limit; larger ones are split into numbered parts).
//!
//! # Replies
//!
//! `{"code": N, "msg": "...", "data": {}}` (older bots: `{"StatusCode": N, "StatusMessage":
//! "..."}`), HTTP 200 either way:
//!
//! | code | meaning | Outcome |
//! |---|---|---|
//! | 0 | success | delivered |
//! | 9499, 11232 | too many requests / frequency limited (100 a minute, 5 a second per bot) | rate limited, 60 s |
//! | 19036 | the request exceeds the size limit | too long |
//! | 19021 | sign match fail or timestamp not within an hour | permanent |
//! | 19022, 19024 | IP not allowed, key words not found | permanent |
//! | any other | | permanent, with the msg |
//!
//! A 2xx body that is not such JSON is gateway junk and transient; non-2xx statuses: 429
//! rate limited, 408 and 5xx transient, anything else permanent.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::mention::{Mention, RawMention};
use super::outcome::{Outcome, by_status, snippet};
use super::sign::hmac_sha256;
use super::{
    ChannelKind, Compose, Defaults, Delivery, Error, Message, Shown, delivery, http, target_of,
};
use crate::alert::render::Part;
use crate::alert::view::NotificationView;
use crate::configfile::{Checker, Rate, Secret};

/// The whole request body after JSON encoding (the documented limit).
pub const MAX_BYTES: usize = 20_000;

/// How long to pause a bot that answered a frequency limit.
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// `type: feishu` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub mention: Option<RawMention>,
}

/// A Feishu (Lark) custom bot.
#[derive(Debug, Clone)]
pub struct Config {
    /// The webhook URL; its last segment is the bot's token.
    pub url: Secret,
    /// The 签名校验 secret; without one the bot must use keywords or an IP allowlist.
    pub secret: Option<Secret>,
    pub mention: Mention,
}

impl ChannelKind for Config {
    const TYPE: &'static str = "feishu";
    /// One a second keeps within both of Feishu's limits (100 a minute, 5 a second).
    const DEFAULTS: Defaults = Defaults {
        rate_limit: Rate {
            count: 1,
            per: Duration::from_secs(1),
        },
        send_resolved: true,
    };
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
        Some(Self {
            url: url?,
            secret,
            mention: Mention::of(raw.mention.as_ref()),
        })
    }

    fn targets(&self) -> Vec<String> {
        vec![target_of(self.url.expose())]
    }

    fn compose(&self, compose: &Compose<'_>) -> Result<Vec<Message>, Error> {
        let at_all = self.mention.at_all(compose.view);
        let template = header_template(compose.view);
        let ack_url = compose.view.ack_url.as_str();
        let build = |part: &Part| card(part, template, ack_url);
        // The signature fields added at send time take this much room.
        let signed =
            r#","timestamp":"1700000000","sign":"OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU=""#
                .len();
        compose.robot_messages(
            true,
            &mentions(&self.mention, at_all),
            MAX_BYTES,
            signed,
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
        let mut body = message.payload.clone();
        if let (Some(secret), Some(fields)) = (&self.secret, body.as_object_mut()) {
            let timestamp = now.timestamp();
            fields.insert("timestamp".to_owned(), json!(timestamp.to_string()));
            fields.insert("sign".to_owned(), json!(sign(secret.expose(), timestamp)));
        }
        http::post_json(client, self.url.expose(), &body, classify).await
    }
}

/// `base64(HMAC-SHA256(key = "{timestamp}\n{secret}", message = ""))`.
pub fn sign(secret: &str, timestamp: i64) -> String {
    let key = format!("{timestamp}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key.as_bytes(), b""))
}

/// The pings at the end of every part's text.
fn mentions(mention: &Mention, at_all: bool) -> String {
    let mut names: Vec<String> = mention
        .user_ids
        .iter()
        .map(|id| format!("<at id={id}></at>"))
        .collect();
    if at_all {
        names.push("<at id=all></at>".to_owned());
    }
    if names.is_empty() {
        String::new()
    } else {
        format!("\n{}", names.join(" "))
    }
}

/// The card header's colour: red for critical, orange for high, yellow for warning, blue
/// otherwise, green once resolved.
fn header_template(view: &NotificationView) -> &'static str {
    if !view.firing {
        return "green";
    }
    match view.severity.as_str() {
        "critical" => "red",
        "high" => "orange",
        "warning" => "yellow",
        _ => "blue",
    }
}

/// One part as an interactive card (without the signature fields); with an ack link, a
/// button under the text.
fn card(part: &Part, template: &str, ack_url: &str) -> serde_json::Value {
    let title = if part.total > 1 {
        format!("{}（{}/{}）", part.title, part.index, part.total)
    } else {
        part.title.clone()
    };
    let mut elements = vec![json!({ "tag": "markdown", "content": part.text })];
    if !ack_url.is_empty() {
        elements.push(json!({
            "tag": "action",
            "actions": [{
                "tag": "button",
                "text": { "tag": "plain_text", "content": "确认告警（停止升级）" },
                "type": "danger",
                "url": ack_url,
            }],
        }));
    }
    json!({
        "msg_type": "interactive",
        "card": {
            "config": { "wide_screen_mode": true },
            "header": { "title": { "tag": "plain_text", "content": title }, "template": template },
            "elements": elements,
        },
    })
}

/// Classifies a bot reply; see the module doc for the table.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    if let Some(outcome) = by_status(status, body) {
        return outcome;
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|reply| reply.get(name)).cloned();
    let Some(code) = field("code")
        .or_else(|| field("StatusCode"))
        .and_then(|code| code.as_i64())
    else {
        return Outcome::Transient(format!("reply without code: {}", snippet(body)));
    };
    let msg = field("msg")
        .or_else(|| field("StatusMessage"))
        .and_then(|msg| msg.as_str().map(str::to_owned))
        .unwrap_or_default();
    let detail = || format!("code {code}: {msg}");
    match code {
        0 => Outcome::Delivered,
        9499 | 11232 => Outcome::RateLimited {
            retry_after: Some(RATE_LIMIT_PAUSE),
        },
        19036 => Outcome::TooLong(detail()),
        _ => Outcome::Permanent(detail()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed with Feishu's documented Python snippet (`hmac.new(string_to_sign,
    /// digestmod=sha256)`, base64).
    #[test]
    fn signature_matches_the_documented_algorithm() {
        assert_eq!(
            sign("feishu-secret", 1_700_000_000),
            "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="
        );
    }

    #[test]
    fn replies_are_classified_by_code() {
        let kind = |body: &str| classify(200, body.as_bytes()).kind();
        assert_eq!(kind(r#"{"code":0,"data":{},"msg":"success"}"#), "delivered");
        assert_eq!(
            kind(r#"{"StatusCode":0,"StatusMessage":"success"}"#),
            "delivered"
        );
        assert_eq!(
            kind(r#"{"code":9499,"msg":"too many request"}"#),
            "rate_limited"
        );
        assert_eq!(
            kind(r#"{"code":11232,"msg":"frequency limited"}"#),
            "rate_limited"
        );
        assert_eq!(kind(r#"{"code":19036,"msg":"too large"}"#), "too_long");
        assert_eq!(
            kind(r#"{"code":19021,"msg":"sign match fail"}"#),
            "permanent"
        );
        assert_eq!(
            kind(r#"{"code":19024,"msg":"Key Words Not Found"}"#),
            "permanent"
        );
        assert_eq!(kind("<html>bad gateway</html>"), "transient");
        assert_eq!(classify(502, b"").kind(), "transient");
        assert_eq!(classify(429, b"").kind(), "rate_limited");
    }
}
