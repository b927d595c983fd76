//! Logging: `tracing` to stderr as logfmt (default) or JSON, filtered by a level directive.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::LogFormat;

/// Installs the global subscriber. `level` is a filter directive (`info`, `debug`,
/// `lookout=debug,warn`); an invalid one falls back to `info` with a warning.
pub fn init(level: &str, format: LogFormat) {
    let (filter, bad_level) = match EnvFilter::try_new(level) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new("info"), Some(error)),
    };
    let layer = match format {
        LogFormat::Logfmt => tracing_logfmt::builder()
            .with_span_name(false)
            .with_span_path(false)
            .layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // A second init (tests running several servers in one process) is harmless.
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    if let Some(error) = bad_level {
        tracing::warn!(%error, level, "invalid log level; using info");
    }
}
