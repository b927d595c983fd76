//! The configuration file's building blocks, shared by every section and every channel
//! kind: YAML with a position for every key ([`yaml`]), the [`Checker`] that collects
//! positioned errors while values are validated, typed values (durations, sizes, rates,
//! [`Secret`]s) and the range each key accepts ([`bounds`]).
//!
//! `config` assembles the sections into its `Config`; `channel` validates each channel
//! kind's keys with the same blocks. This module knows neither.

pub mod bounds;
mod check;
pub mod secret;
mod values;
pub mod yaml;

pub use check::Checker;
pub use secret::Secret;
pub use values::{Rate, parse_bytes, parse_duration, parse_rate};
pub use yaml::{Position, Positions, join};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub position: Position,
    /// Dotted key path, e.g. `channels.ops.retry.initial` or `queries[2].metrics[0].name`.
    pub path: String,
    pub message: String,
}
