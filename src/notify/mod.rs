//! The relay: delivers Alertmanager notifications from the outbox through the configured
//! channels (`crate::channel`, one module per kind, which builds, signs, sends and
//! classifies).
//!
//! [`relay`] (lifecycle: open the outbox, start, reload, stop), [`dispatcher`] (one
//! worker per channel: budgets, digests, backoff, dead letters), [`send`] (the configured
//! channels with their templates and open transports), [`ratelimit`], [`retention`],
//! [`metrics`] and the `render`/`send-test` commands ([`cli`]).

pub mod ack;
pub mod cli;
pub mod dispatcher;
pub mod metrics;
pub mod ratelimit;
pub mod redrive_cli;
pub mod relay;
pub mod retention;
pub mod send;

pub use crate::channel::Outcome;
