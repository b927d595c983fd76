//! The state every request handler and background task shares: the configuration in
//! force (swapped on reload), the exporter, the relay, and the one metrics registry the
//! exporter serves (the relay registers into it before the exporter takes it).
//!
//! Both `app` (the server loop, SIGHUP) and `http` (handlers, `POST /-/reload`) use it;
//! it uses neither.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;

use crate::config::{self, Config, LogFormat, Sources};
use crate::exporter::Exporter;
use crate::notify::metrics::RelayMetrics;
use crate::notify::relay::Relay;
use crate::notify::send::{self, Channels};
use crate::shutdown::Shutdown;

/// Command-line values that override the file, on start and on every reload.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
}

impl Overrides {
    pub fn apply(&self, config: &mut Config) {
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = &self.state_dir {
            config.state_dir.clone_from(dir);
        }
        if let Some(level) = &self.log_level {
            config.log.level.clone_from(level);
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
    }
}

/// Loads the configuration: the file if given, else the built-in default.
pub fn load_config(
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> Result<Config, config::Error> {
    let mut config = match path {
        Some(path) => config::load(path, &Sources::system())?,
        None => Config::builtin(),
    };
    overrides.apply(&mut config);
    Ok(config)
}

/// State shared by every request handler and background task.
#[derive(Debug)]
pub struct AppState {
    config: ArcSwap<Config>,
    exporter: Exporter,
    relay: Arc<Relay>,
    overrides: Overrides,
    ready: AtomicBool,
    reloading: tokio::sync::Mutex<()>,
    /// What stands in for Alertmanager, when something built in does (the demo).
    alert_source: std::sync::OnceLock<String>,
}

impl AppState {
    /// Builds the state and starts the background work (SQL queries, the relay).
    /// Must be called inside a tokio runtime.
    pub fn new(
        config: Config,
        overrides: Overrides,
        shutdown: Shutdown,
    ) -> Result<Arc<Self>, send::Error> {
        let config = Arc::new(config);
        let channels = Channels::new(Arc::clone(&config))?;
        let mut registry = Registry::default();
        let relay_metrics = RelayMetrics::register(&mut registry);
        let exporter = Exporter::new(&config, registry);
        let relay = Relay::start(channels, relay_metrics, shutdown);
        Ok(Arc::new(Self {
            exporter,
            relay,
            config: ArcSwap::new(config),
            overrides,
            ready: AtomicBool::new(false),
            reloading: tokio::sync::Mutex::new(()),
            alert_source: std::sync::OnceLock::new(),
        }))
    }

    pub fn relay(&self) -> &Arc<Relay> {
        &self.relay
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    pub fn exporter(&self) -> &Exporter {
        &self.exporter
    }

    /// Says that a built-in alert source posts the notifications (shown on `/`).
    pub fn set_alert_source(&self, description: String) {
        let _ = self.alert_source.set(description);
    }

    pub fn alert_source(&self) -> Option<&str> {
        self.alert_source.get().map(String::as_str)
    }

    /// Serving, with the configuration loaded and (when receivers exist) the outbox open.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.relay.is_ready()
    }

    /// Marks lookout ready to serve (done by `app::run` once the server is up).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Re-reads the configuration file. An invalid file keeps the running configuration
    /// and returns why; the outcome is also logged and exported as a metric. On success,
    /// returns the changes that take effect only after a restart (also logged).
    pub async fn reload(&self) -> Result<Vec<String>, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let current = self.config();
        let Some(path) = current.source.clone() else {
            tracing::info!("running on the built-in configuration; nothing to reload");
            return Ok(Vec::new());
        };
        let overrides = self.overrides.clone();
        let loaded = tokio::task::spawn_blocking(move || load_config(Some(&path), &overrides))
            .await
            .unwrap_or_else(|error| unreachable!("config loading does not panic: {error}"));
        let outbox_open = self.relay.dispatcher().is_some();
        let loaded = loaded.map_err(ReloadError::Config).and_then(|mut config| {
            let pending = keep_start_only_settings(&current, &mut config, outbox_open);
            let config = Arc::new(config);
            Channels::new(Arc::clone(&config))
                .map(|channels| (config, channels, pending))
                .map_err(ReloadError::Channels)
        });
        match loaded {
            Ok((config, channels, pending)) => {
                for change in &pending {
                    tracing::warn!(%change, "configuration change needs a restart");
                }
                self.exporter.apply(&config);
                self.relay.apply(channels);
                self.config.store(config);
                self.exporter.self_metrics().config_loaded(true);
                tracing::info!("configuration reloaded");
                Ok(pending)
            }
            Err(error) => {
                self.exporter.self_metrics().config_loaded(false);
                tracing::error!(%error, "configuration reload failed; keeping the running configuration");
                Err(error)
            }
        }
    }
}

/// Settings read only at start keep their running values in `new`: the listener is bound
/// once, and an open outbox stays where it was opened (one still being opened follows
/// the new `state_dir`). Returns, for each such setting `new` wanted to change, a note
/// that it needs a restart.
fn keep_start_only_settings(running: &Config, new: &mut Config, outbox_open: bool) -> Vec<String> {
    let mut changes = Vec::new();
    if new.listen != running.listen {
        changes.push(format!(
            "listen changed from {} to {}; still listening on {} until a restart",
            running.listen, new.listen, running.listen
        ));
        new.listen = running.listen;
    }
    if outbox_open && new.state_dir != running.state_dir {
        changes.push(format!(
            "state_dir changed from {} to {}; the outbox stays in {} until a restart",
            running.state_dir.display(),
            new.state_dir.display(),
            running.state_dir.display()
        ));
        new.state_dir.clone_from(&running.state_dir);
    }
    if outbox_open && new.relay.outbox != running.relay.outbox {
        let describe = |location: &config::OutboxLocation| match location {
            config::OutboxLocation::StateDir => "SQLite in state_dir".to_owned(),
            config::OutboxLocation::Shared(shared) => format!(
                "{} (lease {})",
                crate::configfile::secret::redact_url(&shared.database.url),
                humantime::format_duration(shared.lease)
            ),
        };
        changes.push(format!(
            "relay.outbox changed from {} to {}; the outbox stays where it is until a restart",
            describe(&running.relay.outbox),
            describe(&new.relay.outbox)
        ));
        new.relay.outbox.clone_from(&running.relay.outbox);
    }
    changes
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(config::Error),
    #[error(transparent)]
    Channels(send::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_only_settings_keep_their_running_values_and_say_so() {
        let running = Config::builtin();
        let mut new = Config::builtin();
        new.listen = "127.0.0.1:1".parse().unwrap();
        new.state_dir = PathBuf::from("/elsewhere");
        let notes = keep_start_only_settings(&running, &mut new, true);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("listen changed"), "{notes:?}");
        assert!(notes[1].starts_with("state_dir changed"), "{notes:?}");
        assert_eq!(
            (new.listen, &new.state_dir),
            (running.listen, &running.state_dir)
        );

        // An outbox not open yet is opened in the new directory: nothing to say.
        let mut new = Config::builtin();
        new.state_dir = PathBuf::from("/elsewhere");
        assert!(keep_start_only_settings(&running, &mut new, false).is_empty());
        assert_eq!(new.state_dir, PathBuf::from("/elsewhere"));

        let mut same = Config::builtin();
        assert!(keep_start_only_settings(&running, &mut same, true).is_empty());
    }
}
