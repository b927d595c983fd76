//! What the SMS and voice-call kinds share: phone-number checks, template parameters
//! rendered from the notification and cut to the provider's length, and one single-part
//! message per number.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Compose, Error, Message, Outcome, Shown};
use crate::alert::render::Part;
use crate::alert::view::NotificationView;
use crate::configfile::{Checker, join};

/// The shared delivery keys these kinds take: the text is the provider's approved
/// template, so their `template_params`/`tts_params` take the place of `template`.
pub(super) const DELIVERY_KEYS: &[&str] =
    &["rate_limit", "retry", "timeout", "proxy", "send_resolved"];

/// Each variable of a voice call at most this many characters: it is read aloud, so it
/// names the alert (name, level, instance) rather than telling its text.
pub(super) const VOICE_PARAM_MAX_CHARS: usize = 20;

/// Checks `phone_numbers` at `path`: at least one, each `+` and digits.
pub(super) fn check_numbers(path: &str, numbers: &[String], check: &mut Checker<'_>) {
    if numbers.is_empty() {
        check.error(
            &join(path, "phone_numbers"),
            "at least one phone number is needed",
        );
    }
    for number in numbers {
        let digits = number.strip_prefix('+').unwrap_or(number);
        if digits.len() < 5 || !digits.chars().all(|c| c.is_ascii_digit()) {
            check.error(
                &join(path, "phone_numbers"),
                format!("`{number}` is not a phone number"),
            );
        }
    }
}

/// One phone number at one provider: each provider limits a number on its own.
pub(super) fn target(provider: &str, phone: &str) -> String {
    format!("{provider}:{phone}")
}

/// One message per number, each carrying `payload(phone)`. An SMS or a call names the
/// alert and never splits, so every message is part 1 of 1.
pub(super) fn messages<P: Serialize>(
    compose: &Compose<'_>,
    provider: &str,
    numbers: &[String],
    payload: impl Fn(&str) -> P,
) -> Vec<Message> {
    let part = Part {
        title: String::new(),
        text: String::new(),
        index: 1,
        total: 1,
        alerts: compose.view.alert_count,
        omitted: 0,
    };
    numbers
        .iter()
        .map(|phone| {
            let json = serde_json::to_value(payload(phone))
                .unwrap_or_else(|error| unreachable!("SMS and call payloads serialize: {error}"));
            compose.message(&target(provider, phone), json, &part)
        })
        .collect()
}

/// Reads back a payload this kind wrote; a stored message of another kind (the channel
/// changed its `type` while a digest was open) cannot be sent.
pub(super) fn payload<P: DeserializeOwned>(message: &Message, kind: &str) -> Result<P, Outcome> {
    serde_json::from_value(message.payload.clone()).map_err(|error| {
        Outcome::Permanent(format!(
            "the stored message is not a {kind} message: {error}"
        ))
    })
}

/// Renders one template parameter (a minijinja template over the notification) to at most
/// `max_chars` characters, cut on a character boundary.
pub(super) fn param(
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

/// How `render` shows an SMS or a call: its template variables as the provider receives
/// them (`label` is the provider's parameter name), which is what counts against its
/// limits.
pub(super) fn show(message: &Message, label: &str) -> Shown {
    let params = message
        .payload
        .get("params")
        .map_or_else(|| "(no parameters)".to_owned(), ToString::to_string);
    Shown {
        bytes: params.len(),
        text: format!("{label}: {params}"),
    }
}
