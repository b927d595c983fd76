//! Turning a notification into the messages one channel sends: rendered, size-bounded,
//! with mentions that ping, one message per target. Pure — signing happens at send time,
//! because signatures carry the clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::alert::render::{self, Limit, Part, Templates};
use crate::alert::view::NotificationView;
use crate::config::{Channel, ChannelKind, Mention};

/// DingTalk: the whole request body after JSON encoding.
pub const DINGTALK_MAX_BYTES: usize = 20_000;
/// WeCom markdown `content`, after JSON encoding.
pub const WECOM_MARKDOWN_MAX_BYTES: usize = 4_096;
/// WeCom text `content`, after JSON encoding.
pub const WECOM_TEXT_MAX_BYTES: usize = 2_048;
/// Console output is split like a DingTalk message so it reads the same.
const CONSOLE_MAX_BYTES: usize = 20_000;
/// At most this many numbered parts; alerts beyond are counted as omitted.
pub const MAX_PARTS: usize = 5;
/// Aliyun: each template variable at most 35 characters.
pub const ALIYUN_PARAM_MAX_CHARS: usize = 35;
/// Tencent: a conservative bound for one template variable.
pub const TENCENT_PARAM_MAX_CHARS: usize = 20;

/// What a message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// DingTalk or WeCom robot request body.
    Json {
        json: serde_json::Value,
    },
    AliyunSms {
        phone: String,
        params: BTreeMap<String, String>,
    },
    TencentSms {
        phone: String,
        params: Vec<String>,
    },
    Console {
        text: String,
    },
}

/// One message for one target, ready to sign and send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub channel: String,
    /// The rate-limit key: one robot or one phone number.
    pub target: String,
    pub body: Body,
    pub part: usize,
    pub parts: usize,
    pub alerts: usize,
    pub omitted: usize,
}

impl Message {
    /// The bytes that go on the wire for robot bodies, or a readable rendering otherwise.
    pub fn wire(&self) -> Vec<u8> {
        match &self.body {
            Body::Json { json } => json.to_string().into_bytes(),
            Body::AliyunSms { params, .. } => serde_json::to_vec(params).unwrap_or_default(),
            Body::TencentSms { params, .. } => serde_json::to_vec(params).unwrap_or_default(),
            Body::Console { text } => text.clone().into_bytes(),
        }
    }
}

/// Why no message could be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Render(#[from] render::Error),
    #[error("template parameter `{name}`: {source}")]
    Param {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}

/// How to render, beyond the channel's own settings.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// A template to use instead of the channel's (e.g. `digest`).
    pub template: Option<&'a str>,
    /// At most this many parts (the channel's remaining rate budget).
    pub max_parts: usize,
    /// Render at half the size limit: the channel said "too long" to the full size.
    pub shrink: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            template: None,
            max_parts: MAX_PARTS,
            shrink: false,
        }
    }
}

/// Builds the messages `channel` sends for `view`; none for a resolved notification when
/// the channel does not send resolved ones.
pub fn prepare(
    channel: &Channel,
    templates: &Templates,
    view: &NotificationView,
) -> Result<Vec<Message>, Error> {
    prepare_with(channel, templates, view, &Options::default())
}

/// [`prepare`] with a template override, a part budget and shrinking.
pub fn prepare_with(
    channel: &Channel,
    templates: &Templates,
    view: &NotificationView,
    options: &Options<'_>,
) -> Result<Vec<Message>, Error> {
    if !view.firing && !channel.delivery.send_resolved {
        return Ok(Vec::new());
    }
    let template = |markdown: bool| match options.template {
        Some(name) => name.to_owned(),
        None => channel
            .delivery
            .template
            .as_ref()
            .map(|_| channel.name.clone())
            .unwrap_or_else(|| if markdown { "markdown" } else { "text" }.to_owned()),
    };
    let scale = |bytes: usize| if options.shrink { bytes / 2 } else { bytes };
    let max_parts = options.max_parts.clamp(1, MAX_PARTS);
    let message = |target: &str, body, part: &Part| Message {
        channel: channel.name.clone(),
        target: target.to_owned(),
        body,
        part: part.index,
        parts: part.total,
        alerts: part.alerts,
        omitted: part.omitted,
    };
    match &channel.kind {
        ChannelKind::Dingtalk {
            url,
            mention,
            markdown,
            ..
        } => {
            let at_all = at_all(mention, view);
            let suffix = dingtalk_mentions(mention);
            let build = |part: &Part| dingtalk_body(*markdown, part, mention, at_all);
            let measure = |title: &str, text: &str| {
                let part = Part {
                    title: format!("{title}（99/99）"),
                    text: text.to_owned(),
                    index: 99,
                    total: 99,
                    alerts: 0,
                    omitted: 0,
                };
                build(&part).to_string().len()
            };
            let limit = Limit {
                bytes: scale(DINGTALK_MAX_BYTES),
                max_parts,
            };
            let parts = render::render(
                templates,
                &template(*markdown),
                view,
                &suffix,
                limit,
                &measure,
            )?;
            let target = super::target_of(url.expose());
            Ok(parts
                .iter()
                .map(|p| message(&target, Body::Json { json: build(p) }, p))
                .collect())
        }
        ChannelKind::Wecom {
            url,
            mention,
            markdown,
        } => {
            let at_all = at_all(mention, view);
            let suffix = if *markdown {
                wecom_markdown_mentions(mention)
            } else {
                String::new()
            };
            let max = if *markdown {
                WECOM_MARKDOWN_MAX_BYTES
            } else {
                WECOM_TEXT_MAX_BYTES
            };
            let measure = |_: &str, text: &str| json_string_len(text);
            let limit = Limit {
                bytes: scale(max),
                max_parts,
            };
            let parts = render::render(
                templates,
                &template(*markdown),
                view,
                &suffix,
                limit,
                &measure,
            )?;
            let target = super::target_of(url.expose());
            Ok(parts
                .iter()
                .map(|p| {
                    message(
                        &target,
                        Body::Json {
                            json: wecom_body(*markdown, p, mention, at_all),
                        },
                        p,
                    )
                })
                .collect())
        }
        ChannelKind::AliyunSms {
            template_params,
            phone_numbers,
            ..
        } => {
            let params = template_params
                .iter()
                .map(|(name, expr)| {
                    Ok((
                        name.clone(),
                        param(name, expr, view, ALIYUN_PARAM_MAX_CHARS)?,
                    ))
                })
                .collect::<Result<BTreeMap<_, _>, Error>>()?;
            let part = single_part(view);
            Ok(phone_numbers
                .iter()
                .map(|phone| {
                    message(
                        &sms_target("aliyun_sms", phone),
                        Body::AliyunSms {
                            phone: phone.clone(),
                            params: params.clone(),
                        },
                        &part,
                    )
                })
                .collect())
        }
        ChannelKind::TencentSms {
            template_params,
            phone_numbers,
            ..
        } => {
            let params = template_params
                .iter()
                .enumerate()
                .map(|(i, expr)| param(&i.to_string(), expr, view, TENCENT_PARAM_MAX_CHARS))
                .collect::<Result<Vec<_>, Error>>()?;
            let part = single_part(view);
            Ok(phone_numbers
                .iter()
                .map(|phone| {
                    message(
                        &sms_target("tencent_sms", phone),
                        Body::TencentSms {
                            phone: phone.clone(),
                            params: params.clone(),
                        },
                        &part,
                    )
                })
                .collect())
        }
        ChannelKind::Console => {
            let measure = |_: &str, text: &str| text.len();
            let limit = Limit {
                bytes: CONSOLE_MAX_BYTES,
                max_parts,
            };
            let parts = render::render(templates, &template(false), view, "", limit, &measure)?;
            Ok(parts
                .iter()
                .map(|p| {
                    message(
                        "stdout",
                        Body::Console {
                            text: p.text.clone(),
                        },
                        p,
                    )
                })
                .collect())
        }
    }
}

/// The rate-limit keys of `channel`'s targets, as its messages carry them. A key names
/// the real target — the robot (its URL) or the provider and phone number — so channels
/// that send to the same one share its budget.
pub fn targets(channel: &Channel) -> Vec<String> {
    match &channel.kind {
        ChannelKind::Dingtalk { url, .. } | ChannelKind::Wecom { url, .. } => {
            vec![super::target_of(url.expose())]
        }
        ChannelKind::AliyunSms { phone_numbers, .. } => phone_numbers
            .iter()
            .map(|phone| sms_target("aliyun_sms", phone))
            .collect(),
        ChannelKind::TencentSms { phone_numbers, .. } => phone_numbers
            .iter()
            .map(|phone| sms_target("tencent_sms", phone))
            .collect(),
        ChannelKind::Console => vec!["stdout".to_owned()],
    }
}

/// One phone number at one provider: each provider limits a number on its own.
fn sms_target(provider: &str, phone: &str) -> String {
    format!("{provider}:{phone}")
}

impl Message {
    /// Identifies this part among a delivery's messages, to skip it once sent.
    pub fn key(&self) -> String {
        format!("{}#{}/{}", self.target, self.part, self.parts)
    }
}

/// SMS sends one message per notification: it names the alert, never splits.
fn single_part(view: &NotificationView) -> Part {
    Part {
        title: String::new(),
        text: String::new(),
        index: 1,
        total: 1,
        alerts: view.alert_count,
        omitted: 0,
    }
}

fn at_all(mention: &Mention, view: &NotificationView) -> bool {
    view.firing && mention.all_on_severity.contains(&view.severity)
}

/// DingTalk pings only mobiles that also appear as `@mobile` in the text.
fn dingtalk_mentions(mention: &Mention) -> String {
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

fn dingtalk_body(
    markdown: bool,
    part: &Part,
    mention: &Mention,
    at_all: bool,
) -> serde_json::Value {
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

/// WeCom markdown pings user ids written as `<@userid>`; it cannot ping by mobile.
fn wecom_markdown_mentions(mention: &Mention) -> String {
    let names: Vec<String> = mention.user_ids.iter().map(|u| format!("<@{u}>")).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("\n{}", names.join(" "))
    }
}

fn wecom_body(markdown: bool, part: &Part, mention: &Mention, at_all: bool) -> serde_json::Value {
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

/// Bytes of `text` as a JSON string, without the quotes.
fn json_string_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(text.len(), |s| s.len().saturating_sub(2))
}

/// Renders one SMS template parameter (a minijinja expression template) to a string of at
/// most `max_chars` characters.
fn param(
    name: &str,
    template: &str,
    view: &NotificationView,
    max_chars: usize,
) -> Result<String, Error> {
    let env = minijinja::Environment::new();
    let rendered = env
        .render_str(template, view.context())
        .map_err(|source| Error::Param {
            name: name.to_owned(),
            source,
        })?;
    let rendered = rendered.trim();
    Ok(match rendered.char_indices().nth(max_chars) {
        Some((cut, _)) => rendered.get(..cut).unwrap_or(rendered).to_owned(),
        None => rendered.to_owned(),
    })
}
