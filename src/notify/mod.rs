//! Notification channels: the only module that talks to the outside world.
//!
//! Everything a channel needs to speak its protocol lives in its own file — DingTalk
//! robots ([`dingtalk`]), WeCom robots ([`wecom`]), Aliyun and Tencent Cloud SMS
//! ([`sms`]) — as pure functions: a signer that turns credentials, a clock reading and a
//! nonce into the exact request to send, and `classify(status, body)` that turns the
//! channel's reply into an [`Outcome`] the outbox acts on (SPEC §3 "Error classes").
//! Nothing here does I/O yet; the HTTP sending that calls these functions comes later and
//! is the one place where lookout's requests leave the process.
//!
//! **Invariant:** secrets are inputs to signers only. No function here logs, and the
//! signed requests' `Debug` output leaves header values out.

pub mod cli;
pub mod dingtalk;
pub mod dispatcher;
pub mod message;
pub mod metrics;
pub mod outcome;
pub mod ratelimit;
pub mod relay;
pub mod retention;
pub mod send;
pub mod sms;
pub mod wecom;

pub use outcome::Outcome;

/// A short, stable name for a robot that does not reveal its token: the host and the
/// first 8 hex digits of the URL's SHA-256.
pub fn target_of(url: &str) -> String {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let digest = sms::sha256_hex(url.as_bytes());
    format!("{host}#{}", digest.get(..8).unwrap_or_default())
}
