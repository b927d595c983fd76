//! lookout: a monitoring sidecar — node_exporter-compatible host metrics, SQL business
//! metrics, and an Alertmanager relay with a durable outbox to DingTalk, WeCom, Feishu, SMS and email —
//! in one binary.
//!
//! `main.rs` only parses the command line and calls [`cli::main`], which builds the
//! [`state::AppState`] and serves it with [`app::run`]. Everything lives in this library
//! so that tests reach the same code: black-box tests start the real binary, router tests
//! drive [`http::router`] over an `AppState`, and the rest call the parts (config,
//! rendering, signers, SQL backends) directly.
//!
//! Dependencies between these modules point one way: from the entry points (`cli`,
//! `app`) through `http` and the shared `state` to the workers (`notify`, `exporter`,
//! `outbox`), through `config` to `channel` (the channel kinds), and down to `alert`,
//! `configfile` and `backoff`. `tests/it/module_graph.rs` fails on any cycle.

pub mod alert;
pub mod app;
pub mod backoff;
pub mod channel;
pub mod cli;
pub mod config;
pub mod configfile;
pub mod demo;
pub mod exporter;
pub mod http;
pub mod malloc;
pub mod notify;
pub mod outbox;
pub mod shutdown;
pub mod state;
pub mod telemetry;
