//! `type: console`: notifications printed to lookout's standard output, split like a
//! DingTalk message so they read the same. For trying lookout out and for the demo.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{ChannelKind, Compose, Defaults, Delivery, Error, Message, Outcome, Shown};
use crate::configfile::{Checker, Rate};

/// One printed part at most this long.
const MAX_BYTES: usize = 20_000;

/// `type: console` has no keys of its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {}

#[derive(Debug, Clone)]
pub struct Config;

impl ChannelKind for Config {
    const TYPE: &'static str = "console";
    const DEFAULTS: Defaults = Defaults {
        rate_limit: Rate {
            count: 1000,
            per: std::time::Duration::from_secs(1),
        },
        send_resolved: true,
    };
    /// Printing has no budget, retries, timeout or proxy worth setting.
    const DELIVERY_KEYS: &'static [&'static str] = &["template", "send_resolved"];
    type Raw = Raw;
    type Transport = ();

    fn validate(_: &Raw, _: &str, _: &mut Checker<'_>) -> Option<Self> {
        Some(Config)
    }

    fn targets(&self) -> Vec<String> {
        vec!["stdout".to_owned()]
    }

    fn compose(&self, compose: &Compose<'_>) -> Result<Vec<Message>, Error> {
        let measure = |_: &str, text: &str| text.len();
        let parts = compose.render(false, "", compose.limit(MAX_BYTES), &measure)?;
        Ok(parts
            .iter()
            .map(|p| compose.message("stdout", json!({ "text": p.text }), p))
            .collect())
    }

    fn describe(&self, message: &Message) -> Shown {
        let text = text(message).to_owned();
        Shown {
            bytes: text.len(),
            text,
        }
    }

    fn transport(&self, _: &Delivery) -> Result<(), String> {
        Ok(())
    }

    async fn send(&self, _: &(), message: &Message, _: DateTime<Utc>) -> Outcome {
        println!("── lookout → {} ──\n{}", message.channel, text(message));
        Outcome::Delivered
    }
}

fn text(message: &Message) -> &str {
    message
        .payload
        .get("text")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}
