//! WeCom (企业微信) group robots: `classify` for the robot's replies, which report failure
//! inside HTTP 200. The webhook is `POST …/cgi-bin/webhook/send?key=KEY`; there is no
//! signing, the key in the URL is the credential.
//!
//! # Replies
//!
//! `{"errcode": N, "errmsg": "..."}`. Sources: WeCom "全局错误码"
//! (developer.work.weixin.qq.com/document/path/90455) and the group-robot page ("每个机器人
//! 发送的消息不能超过20条/分钟"; markdown `content` at most 4096 bytes).
//!
//! | errcode | meaning | Outcome |
//! |---|---|---|
//! | 0 | ok | delivered |
//! | 45009 | 接口调用超过限制 (`api freq out of limit`): over 20/min; the block lifts after the window | rate limited, 60 s |
//! | 40058 with an errmsg about length (`markdown.content exceed max length 4096`) | too long | too long |
//! | 40058 otherwise (`invalid param 'key'` …) | 不合法的参数 | permanent |
//! | -1 | 系统繁忙 | transient |
//! | 93000 | 机器人webhookurl不合法或者机器人已经被移除出群 (bad key) | permanent |
//! | 93004, 93008 | robot disabled, not in the group | permanent |
//! | 40008 | 不合法的msgtype参数 — a bad message type, not a length problem | permanent |
//! | 40001, 40014, 44004 … | bad credential, bad token, empty content | permanent |
//! | any other | | permanent, with the errmsg |
//!
//! 40058 is WeCom's generic "invalid parameter"; only its errmsg tells an over-long
//! message from a bad key, so the length case is recognised by the errmsg. A 2xx body that
//! is not such JSON is gateway junk and transient; non-2xx statuses: 429 rate limited, 408
//! and 5xx transient, anything else permanent.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::mention::{Mention, RawMention};
use super::outcome::{Outcome, by_status, snippet};
use super::{
    ChannelKind, Compose, Defaults, Delivery, Error, Message, Shown, delivery, http, target_of,
};
use crate::alert::render::Part;
use crate::configfile::{Checker, Secret};

/// Markdown `content`, after JSON encoding.
pub const MARKDOWN_MAX_BYTES: usize = 4_096;
/// Text `content`, after JSON encoding.
pub const TEXT_MAX_BYTES: usize = 2_048;

/// `type: wecom` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub url: Option<String>,
    pub mention: Option<RawMention>,
    pub message_type: Option<String>,
}

/// A WeCom group robot.
#[derive(Debug, Clone)]
pub struct Config {
    /// The webhook URL with its `key`, the robot's only credential.
    pub url: Secret,
    pub mention: Mention,
    /// `markdown` (default) or `text` messages.
    pub markdown: bool,
}

impl ChannelKind for Config {
    const TYPE: &'static str = "wecom";
    const DEFAULTS: Defaults = Defaults::CHAT;
    const DELIVERY_KEYS: &'static [&'static str] = delivery::KEYS;
    type Raw = Raw;
    type Transport = reqwest::Client;

    fn validate(raw: &Raw, path: &str, check: &mut Checker<'_>) -> Option<Self> {
        let url = check.url(path, "url", raw.url.as_deref());
        let markdown = super::markdown(path, raw.message_type.as_deref(), check);
        Some(Self {
            url: url?,
            mention: Mention::of(raw.mention.as_ref()),
            markdown,
        })
    }

    fn targets(&self) -> Vec<String> {
        vec![target_of(self.url.expose())]
    }

    fn compose(&self, compose: &Compose<'_>) -> Result<Vec<Message>, Error> {
        let at_all = self.mention.at_all(compose.view);
        let (suffix, max) = if self.markdown {
            (markdown_mentions(&self.mention), MARKDOWN_MAX_BYTES)
        } else {
            (String::new(), TEXT_MAX_BYTES)
        };
        let measure = |_: &str, text: &str| super::json_string_len(text);
        let parts = compose.render(self.markdown, &suffix, compose.limit(max), &measure)?;
        let target = target_of(self.url.expose());
        Ok(parts
            .iter()
            .map(|p| compose.message(&target, body(self.markdown, p, &self.mention, at_all), p))
            .collect())
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
        _now: DateTime<Utc>,
    ) -> Outcome {
        http::post_json(client, self.url.expose(), &message.payload, classify).await
    }
}

/// Markdown pings user ids written as `<@userid>`; it cannot ping by mobile.
fn markdown_mentions(mention: &Mention) -> String {
    let names: Vec<String> = mention.user_ids.iter().map(|u| format!("<@{u}>")).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("\n{}", names.join(" "))
    }
}

/// The request body of one part; text messages ping through the mention lists.
fn body(markdown: bool, part: &Part, mention: &Mention, at_all: bool) -> serde_json::Value {
    if markdown {
        return json!({ "msgtype": "markdown", "markdown": { "content": part.text } });
    }
    let mut users = mention.user_ids.clone();
    let mut mobiles = mention.mobiles.clone();
    if at_all {
        users.push("@all".to_owned());
        mobiles.push("@all".to_owned());
    }
    json!({ "msgtype": "text", "text": { "content": part.text, "mentioned_list": users, "mentioned_mobile_list": mobiles } })
}

/// How long to pause a robot that answered 45009 (its limit is per minute).
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// Classifies a robot reply; see the module doc for the table.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    if let Some(outcome) = by_status(status, body) {
        return outcome;
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let Some(code) = parsed
        .as_ref()
        .and_then(|v| v.get("errcode"))
        .and_then(serde_json::Value::as_i64)
    else {
        return Outcome::Transient(format!("reply without errcode: {}", snippet(body)));
    };
    let errmsg = parsed
        .as_ref()
        .and_then(|v| v.get("errmsg"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let detail = || format!("errcode {code}: {errmsg}");
    match code {
        0 => Outcome::Delivered,
        45009 => Outcome::RateLimited {
            retry_after: Some(RATE_LIMIT_PAUSE),
        },
        40058 if mentions_length(errmsg) => Outcome::TooLong(detail()),
        -1 => Outcome::Transient(detail()),
        _ => Outcome::Permanent(detail()),
    }
}

/// Whether an errmsg is about the content's size.
fn mentions_length(errmsg: &str) -> bool {
    let lower = errmsg.to_ascii_lowercase();
    ["exceed", "length", "too long", "too large"]
        .iter()
        .any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        let too_long = r#"{"errcode":40058,"errmsg":"markdown.content exceed max length 4096. Invalid input invalid Request Parameter, hint: [1647424338252370220001484], from ip: 113.116.157.231, more info at https://open.work.weixin.qq.com/devtool/query?e=40058"}"#;
        let bad_key = r#"{"errcode":40058,"errmsg":"invalid param 'key', hint: [1713777111197560034674942], more info at https://open.work.weixin.qq.com/devtool/query?e=40058"}"#;
        let cases: Vec<(u16, &str, &str)> = vec![
            (200, r#"{"errcode":0,"errmsg":"ok"}"#, "delivered"),
            (
                200,
                r#"{"errcode":45009,"errmsg":"api freq out of limit, hint: [x]"}"#,
                "rate_limited",
            ),
            (200, too_long, "too_long"),
            (200, bad_key, "permanent"),
            (200, r#"{"errcode":-1,"errmsg":"system busy"}"#, "transient"),
            (
                200,
                r#"{"errcode":93000,"errmsg":"invalid webhook url, hint: [x]"}"#,
                "permanent",
            ),
            (
                200,
                r#"{"errcode":93004,"errmsg":"robot disabled"}"#,
                "permanent",
            ),
            (
                200,
                r#"{"errcode":40008,"errmsg":"invalid message type"}"#,
                "permanent",
            ),
            (
                200,
                r#"{"errcode":40001,"errmsg":"invalid credential"}"#,
                "permanent",
            ),
            (
                200,
                r#"{"errcode":40014,"errmsg":"invalid access_token"}"#,
                "permanent",
            ),
            (
                200,
                r#"{"errcode":44004,"errmsg":"empty content"}"#,
                "permanent",
            ),
            (200, "<html>nginx</html>", "transient"),
            (200, "{}", "transient"),
            (502, "bad gateway", "transient"),
            (500, "", "transient"),
            (429, "", "rate_limited"),
            (400, "bad request", "permanent"),
        ];
        for (status, body, want) in cases {
            assert_eq!(
                classify(status, body.as_bytes()).kind(),
                want,
                "{status} {body}"
            );
        }
        assert_eq!(
            classify(
                200,
                br#"{"errcode":45009,"errmsg":"api freq out of limit"}"#
            ),
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(60))
            }
        );
        assert_eq!(
            classify(200, bad_key.as_bytes()),
            Outcome::Permanent(
                "errcode 40058: invalid param 'key', hint: [1713777111197560034674942], more info at https://open.work.weixin.qq.com/devtool/query?e=40058".into()
            )
        );
        assert_eq!(
            classify(200, b"<html>nginx</html>"),
            Outcome::Transient("reply without errcode: <html>nginx</html>".into())
        );
    }
}
