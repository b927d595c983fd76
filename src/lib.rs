//! lookout: a monitoring sidecar — node_exporter-compatible host metrics, SQL business
//! metrics, and an Alertmanager relay to DingTalk, WeCom and SMS — in one binary.
//!
//! `main.rs` only parses the command line; everything else lives here so that tests can
//! start the real server through [`app::run`].

pub mod alert;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod demo;
pub mod exporter;
pub mod http;
pub mod notify;
pub mod outbox;
pub mod shutdown;
pub mod state;
pub mod telemetry;
