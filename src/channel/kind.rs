//! What every channel kind provides ([`ChannelKind`]), and what it is handed to build
//! messages ([`Compose`]).

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::{Channel, Defaults, Delivery, Error, Message, Options, Outcome};
use crate::alert::render::{self, Limit, Part, Templates};
use crate::alert::view::NotificationView;
use crate::configfile::Checker;

/// One channel kind: its keys, its messages, its request and reply. Implemented by the
/// `Config` of each kind's module and dispatched by the `Kind` enum (static dispatch; a
/// closed set, not plugins).
pub trait ChannelKind: Sized + Clone + std::fmt::Debug {
    /// The `type` value that selects the kind in the file.
    const TYPE: &'static str;
    /// Budget and `send_resolved` when the file does not set them.
    const DEFAULTS: Defaults;
    /// The shared delivery keys the kind accepts (`delivery::KEYS` or a subset); the
    /// others are unknown keys for it.
    const DELIVERY_KEYS: &'static [&'static str];

    /// The kind's own keys as written (serde, every unknown key refused).
    type Raw: DeserializeOwned + std::fmt::Debug;
    /// What `send` needs open: an HTTP client, an SMTP pool, nothing.
    type Transport: Send + Sync;

    /// Validates the kind's own keys found at `path`, reporting every problem to `check`.
    fn validate(raw: &Self::Raw, path: &str, check: &mut Checker<'_>) -> Option<Self>;

    /// The rate-limit key of each target (robot, phone number, mail server).
    fn targets(&self) -> Vec<String>;

    /// The messages for one notification, one per target and part.
    fn compose(&self, compose: &Compose<'_>) -> Result<Vec<Message>, Error>;

    /// How the `render` command shows one of its messages.
    fn describe(&self, message: &Message) -> Shown;

    /// Opens the transport, with the channel's timeout and proxy.
    fn transport(&self, delivery: &Delivery) -> Result<Self::Transport, String>;

    /// Signs `message` at `now`, sends it and classifies the reply.
    fn send(
        &self,
        transport: &Self::Transport,
        message: &Message,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Outcome> + Send;
}

/// How `render` shows one message: the bytes that count against the provider's limit,
/// and a readable body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub bytes: usize,
    pub text: String,
}

/// Everything a kind builds its messages from.
pub struct Compose<'a> {
    pub channel: &'a Channel,
    pub templates: &'a Templates,
    pub view: &'a NotificationView,
    pub options: &'a Options<'a>,
}

impl Compose<'_> {
    /// The template to render: the override, else the channel's own file, else the
    /// built-in `markdown` or `text`.
    pub fn template(&self, markdown: bool) -> String {
        match self.options.template {
            Some(name) => name.to_owned(),
            None if self.channel.delivery.template.is_some() => self.channel.name.clone(),
            None if markdown => "markdown".to_owned(),
            None => "text".to_owned(),
        }
    }

    /// The size limit for `bytes` (halved after a "too long") and the part budget.
    pub fn limit(&self, bytes: usize) -> Limit {
        Limit {
            bytes: if self.options.shrink {
                bytes / 2
            } else {
                bytes
            },
            max_parts: self.options.max_parts.clamp(1, super::MAX_PARTS),
        }
    }

    /// Renders the view into parts that `measure(title, text)` keeps within `limit`;
    /// `suffix` ends every part (mentions).
    pub fn render(
        &self,
        markdown: bool,
        suffix: &str,
        limit: Limit,
        measure: &dyn Fn(&str, &str) -> usize,
    ) -> Result<Vec<Part>, Error> {
        Ok(render::render(
            self.templates,
            &self.template(markdown),
            self.view,
            suffix,
            limit,
            measure,
        )?)
    }

    /// A robot's messages to `target`: parts rendered so that each whole request body,
    /// `body(part)`, fits in `bytes` — measured with the widest numbering a part can get,
    /// plus `signed` bytes the signature adds at send time.
    pub fn robot_messages(
        &self,
        markdown: bool,
        suffix: &str,
        bytes: usize,
        signed: usize,
        target: &str,
        body: &dyn Fn(&Part) -> serde_json::Value,
    ) -> Result<Vec<Message>, Error> {
        let measure = |title: &str, text: &str| {
            let widest = Part {
                title: format!("{title}（99/99）"),
                text: text.to_owned(),
                index: 99,
                total: 99,
                alerts: 0,
                omitted: 0,
            };
            body(&widest).to_string().len() + signed
        };
        let parts = self.render(markdown, suffix, self.limit(bytes), &measure)?;
        Ok(parts
            .iter()
            .map(|part| self.message(target, body(part), part))
            .collect())
    }

    /// One part's message to `target`.
    pub fn message(&self, target: &str, payload: serde_json::Value, part: &Part) -> Message {
        super::message(&self.channel.name, target, payload, part)
    }
}
