//! Channel kinds: each one a module that owns everything about it — its keys in the file
//! (raw and validated, with its defaults), the messages it builds from a notification,
//! its signed request and the classification of the reply.
//!
//! | module | `type` | target |
//! |---|---|---|
//! | [`dingtalk`] | `dingtalk` | a DingTalk group robot |
//! | [`wecom`] | `wecom` | a WeCom (企业微信) group robot |
//! | [`feishu`] | `feishu` | a Feishu (Lark) custom bot |
//! | [`aliyun_sms`] | `aliyun_sms` | Aliyun SMS, one message per number |
//! | [`tencent_sms`] | `tencent_sms` | Tencent Cloud SMS, one message per number |
//! | [`aliyun_voice`] | `aliyun_voice` | Aliyun voice (TTS) calls, one call per number |
//! | [`tencent_voice`] | `tencent_voice` | Tencent Cloud voice (TTS) calls, one call per number |
//! | [`email`] | `email` | an SMTP server, one mail to every recipient |
//! | [`console`] | `console` | lookout's standard output |
//!
//! Every kind implements [`ChannelKind`]; the closed set is the one list in [`kinds!`]
//! below, which writes the [`Kind`] enum and the one `match` per operation that
//! dispatches to the kind's module. **Invariant:** adding a kind touches its own module
//! and that list, nothing else.
//!
//! Around the kinds: [`delivery`] (the keys every kind shares, flattened into each),
//! [`mention`], [`outcome`] (what a reply means to the outbox), [`sign`] (hashes and the
//! signed-request type the signers share) and [`http`] (the HTTP exchange, the one place
//! a request leaves lookout).
//!
//! **Invariant:** secrets are inputs to signers only: logs and errors name a robot by
//! [`target_of`] and leave URLs out, and signed requests' `Debug` output leaves header
//! values out.

pub mod aliyun_sms;
pub mod aliyun_voice;
pub mod console;
pub mod delivery;
pub mod dingtalk;
pub mod email;
pub mod feishu;
pub mod http;
mod kind;
pub mod mention;
pub mod outcome;
pub mod sign;
mod sms;
pub mod tencent_sms;
pub mod tencent_voice;
pub mod wecom;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use marked_yaml::Node;
use serde::{Deserialize, Serialize};

use crate::alert::render::{self, Part, Templates};
use crate::alert::view::NotificationView;
use crate::configfile::yaml::{self, Positions};
use crate::configfile::{Checker, Diagnostic, join};

pub use delivery::{Defaults, Delivery, RawDelivery};
pub use kind::{ChannelKind, Compose, Shown};
pub use mention::Mention;
pub use outcome::Outcome;

/// At most this many numbered parts; alerts beyond are counted as omitted.
pub const MAX_PARTS: usize = 5;

/// One configured channel: its name, the delivery keys every kind has, and its kind.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub delivery: Delivery,
    pub kind: Kind,
}

/// A channel as written in the file: the shared delivery keys and the kind's own keys.
#[derive(Debug)]
pub struct RawChannel {
    pub delivery: RawDelivery,
    pub kind: RawKind,
}

/// Writes the closed set of kinds — the [`Kind`] enum, its raw and ready-to-send
/// counterparts, and one `match` per operation — from one list of `Variant(module)`.
macro_rules! kinds {
    ($($variant:ident($module:ident)),+ $(,)?) => {
        /// The closed set of channel kinds, each with its validated settings.
        #[derive(Debug, Clone)]
        pub enum Kind {
            $($variant($module::Config),)+
        }

        /// A kind's own keys as written in the file.
        #[derive(Debug)]
        pub enum RawKind {
            $($variant(<$module::Config as ChannelKind>::Raw),)+
        }

        /// A kind's settings with its open transport (an HTTP client, an SMTP pool).
        enum Ready {
            $($variant($module::Config, <$module::Config as ChannelKind>::Transport),)+
        }

        /// The accepted values of a channel's `type` key.
        pub const TYPES: &[&str] = &[$(<$module::Config as ChannelKind>::TYPE,)+];

        impl RawKind {
            /// Deserializes the kind's own keys for `type_name`; `Err` for an unknown type.
            fn decode(
                type_name: &str,
                node: &Node,
                path: &str,
                positions: &Positions,
                errors: &mut Vec<Diagnostic>,
            ) -> Result<Option<Self>, ()> {
                $(if type_name == <$module::Config as ChannelKind>::TYPE {
                    return Ok(yaml::decode(node, path, positions, errors).map(Self::$variant));
                })+
                Err(())
            }

            fn defaults(&self) -> Defaults {
                match self {
                    $(Self::$variant(_) => <$module::Config as ChannelKind>::DEFAULTS,)+
                }
            }

            fn validate(&self, path: &str, check: &mut Checker<'_>) -> Option<Kind> {
                match self {
                    $(Self::$variant(raw) => {
                        <$module::Config as ChannelKind>::validate(raw, path, check)
                            .map(Kind::$variant)
                    })+
                }
            }
        }

        /// The delivery keys `type_name` accepts (all, for an unknown type).
        fn delivery_keys(type_name: &str) -> &'static [&'static str] {
            $(if type_name == <$module::Config as ChannelKind>::TYPE {
                return <$module::Config as ChannelKind>::DELIVERY_KEYS;
            })+
            delivery::KEYS
        }

        impl Kind {
            /// The `type` value that selects this kind in the file.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$module::Config as ChannelKind>::TYPE,)+
                }
            }

            /// The rate-limit keys of this channel's targets, as its messages carry them.
            pub fn targets(&self) -> Vec<String> {
                match self {
                    $(Self::$variant(c) => c.targets(),)+
                }
            }

            fn compose(&self, compose: &Compose<'_>) -> Result<Vec<Message>, Error> {
                match self {
                    $(Self::$variant(c) => c.compose(compose),)+
                }
            }

            /// How the `render` command shows `message`.
            pub fn describe(&self, message: &Message) -> Shown {
                match self {
                    $(Self::$variant(c) => c.describe(message),)+
                }
            }

            fn ready(&self, delivery: &Delivery) -> Result<Ready, String> {
                match self {
                    $(Self::$variant(c) => Ok(Ready::$variant(c.clone(), c.transport(delivery)?)),)+
                }
            }
        }

        impl Ready {
            async fn send(&self, message: &Message, now: DateTime<Utc>) -> Outcome {
                match self {
                    $(Self::$variant(c, transport) => c.send(transport, message, now).await,)+
                }
            }
        }
    };
}

kinds! {
    Dingtalk(dingtalk),
    Wecom(wecom),
    Feishu(feishu),
    AliyunSms(aliyun_sms),
    TencentSms(tencent_sms),
    AliyunVoice(aliyun_voice),
    TencentVoice(tencent_voice),
    Email(email),
    Console(console),
}

/// One message for one target, as built and as stored in an open digest. `payload` is
/// the kind's own (a robot's request body, an SMS's number and parameters); only the
/// kind that built it reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub channel: String,
    /// The rate-limit key: one robot or one phone number.
    pub target: String,
    pub payload: serde_json::Value,
    pub part: usize,
    pub parts: usize,
    pub alerts: usize,
    pub omitted: usize,
}

impl Message {
    /// Identifies this part among a delivery's messages, to skip it once sent.
    pub fn key(&self) -> String {
        format!("{}#{}/{}", self.target, self.part, self.parts)
    }

    /// The payload as compact JSON.
    pub fn wire(&self) -> Vec<u8> {
        self.payload.to_string().into_bytes()
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

impl Channel {
    /// Builds the messages this channel sends for `view`; none for a resolved
    /// notification when the channel does not send resolved ones.
    pub fn prepare(
        &self,
        templates: &Templates,
        view: &NotificationView,
        options: &Options<'_>,
    ) -> Result<Vec<Message>, Error> {
        if !view.firing && !self.delivery.send_resolved {
            return Ok(Vec::new());
        }
        self.kind.compose(&Compose {
            channel: self,
            templates,
            view,
            options,
        })
    }

    /// The rate-limit keys of this channel's targets. A key names the real target — the
    /// robot (its URL) or the provider and phone number — so channels that send to the
    /// same one share its budget.
    pub fn targets(&self) -> Vec<String> {
        self.kind.targets()
    }

    /// Validates one raw channel; `None` (with the errors in `check`) when it is unusable.
    pub fn validate(name: &str, raw: &RawChannel, check: &mut Checker<'_>) -> Option<Channel> {
        let path = join("channels", name);
        let delivery = raw.delivery.validate(&path, raw.kind.defaults(), check);
        let kind = raw.kind.validate(&path, check)?;
        Some(Channel {
            name: name.to_owned(),
            delivery,
            kind,
        })
    }
}

/// A channel ready to send: its settings and its open transport.
pub struct Sender {
    ready: Ready,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sender")
    }
}

impl Sender {
    /// Opens `channel`'s transport (builds its HTTP client, with its timeout and proxy).
    pub fn new(channel: &Channel) -> Result<Self, String> {
        http::install_crypto_provider();
        Ok(Self {
            ready: channel.kind.ready(&channel.delivery)?,
        })
    }

    /// Signs `message` at `now`, sends it and classifies the reply.
    pub async fn send(&self, message: &Message, now: DateTime<Utc>) -> Outcome {
        self.ready.send(message, now).await
    }
}

/// Deserializes the `channels` section: each entry by its `type` key, its shared
/// delivery keys apart from the kind's own.
pub fn decode_section(
    node: &Node,
    positions: &Positions,
    errors: &mut Vec<Diagnostic>,
) -> BTreeMap<String, RawChannel> {
    let mut out = BTreeMap::new();
    let Some(map) = yaml::expect_mapping(node, "channels", positions, errors) else {
        return out;
    };
    for (name, value) in map.iter() {
        let path = join("channels", name.as_str());
        if let Some(channel) = decode(value, &path, positions, errors) {
            out.insert(name.as_str().to_owned(), channel);
        }
    }
    out
}

fn decode(
    node: &Node,
    path: &str,
    positions: &Positions,
    errors: &mut Vec<Diagnostic>,
) -> Option<RawChannel> {
    let map = yaml::expect_mapping(node, path, positions, errors)?;
    let Some(type_name) = map.get_scalar("type").map(|t| t.as_str().to_owned()) else {
        errors.push(Diagnostic {
            position: positions.of(path),
            path: path.to_owned(),
            message: format!("missing key `type` (one of: {})", TYPES.join(", ")),
        });
        return None;
    };
    let shared = delivery_keys(&type_name);
    let mut own = map.clone();
    own.retain(|key, _| key.as_str() != "type" && !shared.contains(&key.as_str()));
    let mut common = map.clone();
    common.retain(|key, _| shared.contains(&key.as_str()));

    let before = errors.len();
    let kind = RawKind::decode(&type_name, &Node::Mapping(own), path, positions, errors);
    // An unknown key's error lists the shared keys the kind accepts too.
    for error in errors.iter_mut().skip(before) {
        if let Some((head, rest)) = error.message.split_once(" (expected one of: ") {
            let mut expected: Vec<&str> = rest.trim_end_matches(')').split(", ").collect();
            expected.extend(shared);
            error.message = format!("{head} (expected one of: {})", expected.join(", "));
        }
    }
    let kind = match kind {
        Ok(kind) => kind?,
        Err(()) => {
            errors.push(Diagnostic {
                position: positions.of(&join(path, "type")),
                path: join(path, "type"),
                message: format!(
                    "unknown channel type `{type_name}` (expected one of: {})",
                    TYPES.join(", ")
                ),
            });
            return None;
        }
    };
    let delivery = yaml::decode(&Node::Mapping(common), path, positions, errors)?;
    Some(RawChannel { delivery, kind })
}

/// A short, stable name for a robot that does not reveal its token: the host and the
/// first 8 hex digits of the URL's SHA-256.
pub fn target_of(url: &str) -> String {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let digest = sign::sha256_hex(url.as_bytes());
    format!("{host}#{}", digest.get(..8).unwrap_or_default())
}

/// One part's message: the channel's name and the part's numbering around `payload`.
fn message(channel: &str, target: &str, payload: serde_json::Value, part: &Part) -> Message {
    Message {
        channel: channel.to_owned(),
        target: target.to_owned(),
        payload,
        part: part.index,
        parts: part.total,
        alerts: part.alerts,
        omitted: part.omitted,
    }
}

/// A robot's request body as `render` shows it: its size on the wire, pretty-printed.
fn show_json(payload: &serde_json::Value) -> Shown {
    Shown {
        bytes: payload.to_string().len(),
        text: serde_json::to_string_pretty(payload).unwrap_or_default(),
    }
}

/// `message_type`: `markdown` (the default) or `text`; true for markdown.
fn markdown(path: &str, value: Option<&str>, check: &mut Checker<'_>) -> bool {
    match value {
        None | Some("markdown") => true,
        Some("text") => false,
        Some(other) => {
            check.error(
                &join(path, "message_type"),
                format!("unknown message type `{other}` (expected markdown or text)"),
            );
            true
        }
    }
}

/// Bytes of `text` as a JSON string, without the quotes.
fn json_string_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(text.len(), |s| s.len().saturating_sub(2))
}

#[cfg(test)]
mod tests;
