//! The relay: delivers Alertmanager notifications to DingTalk, WeCom and SMS — the only
//! module that sends to chat robots and SMS providers.
//!
//! Each channel kind's protocol lives in its own file — DingTalk robots ([`dingtalk`]),
//! WeCom robots ([`wecom`]), Aliyun and Tencent Cloud SMS ([`sms`]) — as pure functions:
//! a signer that turns credentials, a clock reading and a nonce into the exact request to
//! send, and `classify(status, body)` that turns the reply into an [`Outcome`] the outbox
//! acts on (SPEC §3 "Error classes"). [`message`] builds a channel's messages from a
//! notification (pure); [`send`] signs them with the current clock and sends them over
//! HTTP — the one place where lookout's requests leave the process. Around them:
//! [`relay`] (lifecycle: open the outbox, start, reload, stop), [`dispatcher`] (one
//! worker per channel: budgets, digests, backoff, dead letters), [`ratelimit`],
//! [`retention`], [`metrics`] and the `render`/`send-test` commands ([`cli`]).
//!
//! **Invariant:** secrets are inputs to signers only: logs and errors name a robot by
//! [`target_of`] and leave URLs out, and the signed requests' `Debug` output leaves
//! header values out.

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
