//! The delivery keys every channel kind shares — `rate_limit`, `retry`, `timeout`,
//! `proxy`, `template`, `send_resolved` — written beside the kind's own keys in the file
//! and validated here once for every kind.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::backoff::{self, Backoff};
use crate::configfile::{Checker, Rate, bounds, join, parse_rate};

/// Every shared key, in the order the file documents them.
pub const KEYS: &[&str] = &[
    "rate_limit",
    "retry",
    "timeout",
    "proxy",
    "template",
    "send_resolved",
];

/// `retry.initial` and `retry.max` when not set.
const DEFAULT_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));

/// The shared keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    pub rate_limit: Option<String>,
    pub retry: Option<RawRetry>,
    pub timeout: Option<String>,
    pub proxy: Option<String>,
    pub template: Option<String>,
    pub send_resolved: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub initial: Option<String>,
    pub max: Option<String>,
}

/// What a kind sends when the file does not say.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub rate_limit: Rate,
    pub send_resolved: bool,
}

impl Defaults {
    /// DingTalk and WeCom robots: 20 messages a minute.
    pub const CHAT: Self = Self {
        rate_limit: Rate {
            count: 20,
            per: Duration::from_secs(60),
        },
        send_resolved: true,
    };
    /// Aliyun and Tencent throttle one number to about one message a minute.
    pub const SMS: Self = Self {
        rate_limit: Rate {
            count: 1,
            per: Duration::from_secs(60),
        },
        send_resolved: false,
    };
    /// Voice calls: one a minute per number (Aliyun's per-number flow control; Tencent's
    /// is one per 30 s), and no call for a resolved alert.
    pub const VOICE: Self = Self::SMS;
}

/// The validated shared keys.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub rate_limit: Rate,
    /// Retry delays, built from `retry.initial` and `retry.max` (checked there).
    pub retry: Backoff,
    pub timeout: Duration,
    pub proxy: Option<String>,
    pub template: Option<PathBuf>,
    pub send_resolved: bool,
}

impl RawDelivery {
    /// Validates the keys of the channel at `path`, with its kind's `defaults`.
    pub fn validate(&self, path: &str, defaults: Defaults, check: &mut Checker<'_>) -> Delivery {
        let rate_limit = match &self.rate_limit {
            None => defaults.rate_limit,
            Some(text) => parse_rate(text).unwrap_or_else(|message| {
                check.error(&join(path, "rate_limit"), message);
                defaults.rate_limit
            }),
        };
        if let Some(proxy) = &self.proxy {
            check.url(path, "proxy", Some(proxy));
        }
        Delivery {
            rate_limit,
            retry: retry(path, self.retry.as_ref(), check),
            timeout: check.duration_in(
                &join(path, "timeout"),
                self.timeout.as_deref(),
                Duration::from_secs(10),
                bounds::SEND_TIMEOUT,
            ),
            proxy: self.proxy.clone(),
            template: self.template.as_ref().map(PathBuf::from),
            send_resolved: self.send_resolved.unwrap_or(defaults.send_resolved),
        }
    }
}

/// `retry.initial` and `retry.max` as the backoff the dispatcher uses.
fn retry(path: &str, raw: Option<&RawRetry>, check: &mut Checker<'_>) -> Backoff {
    let initial = check.duration_in(
        &join(path, "retry.initial"),
        raw.and_then(|r| r.initial.as_deref()),
        DEFAULT_RETRY.0,
        bounds::RETRY_INITIAL,
    );
    let max = check.duration_in(
        &join(path, "retry.max"),
        raw.and_then(|r| r.max.as_deref()),
        DEFAULT_RETRY.1,
        bounds::RETRY_MAX,
    );
    Backoff::new(initial, max).unwrap_or_else(|error| {
        let message = match error {
            backoff::Error::ZeroInitial => "`initial` must be positive",
            backoff::Error::InitialAboveMax { .. } => "`initial` must not exceed `max`",
        };
        check.error(&join(path, "retry"), message);
        // The config is refused for this error; the default only fills the slot.
        Backoff::constant(DEFAULT_RETRY.0, DEFAULT_RETRY.1)
    })
}
