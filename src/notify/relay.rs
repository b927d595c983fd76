//! The relay's lifecycle: open the outbox (retrying while the state directory is not
//! usable), start the dispatcher once it is open, accept webhook notifications into it,
//! follow reloads, and stop cleanly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};

use super::dispatcher::Dispatcher;
use super::metrics::{RelayMetrics, Snapshot};
use super::send::Channels;
use crate::alert::Notification;
use crate::config::Config;
use crate::outbox::now_ms;
use crate::outbox::{self, Accepted, NewNotification, Outbox, key};
use crate::shutdown::Shutdown;

/// Why a notification was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("the outbox is not available: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Outbox(#[from] outbox::Error),
}

/// The relay: outbox + dispatcher.
#[derive(Debug)]
pub struct Relay {
    channels: ArcSwap<Channels>,
    dispatcher: ArcSwapOption<Dispatcher>,
    open_error: Mutex<Option<String>>,
    metrics: RelayMetrics,
    shutdown: Shutdown,
}

impl Relay {
    /// Starts opening the outbox in the background when any receiver is configured.
    pub fn start(channels: Channels, metrics: RelayMetrics, shutdown: Shutdown) -> Arc<Relay> {
        let needed = !channels.config().receivers.is_empty();
        metrics.init(channels.config());
        let relay = Arc::new(Relay {
            channels: ArcSwap::from_pointee(channels),
            dispatcher: ArcSwapOption::empty(),
            open_error: Mutex::new(None),
            metrics,
            shutdown,
        });
        if needed {
            tokio::spawn(Arc::clone(&relay).open_outbox());
        }
        relay
    }

    /// Opens the outbox, retrying every 2 s until it works or lookout stops.
    async fn open_outbox(self: Arc<Self>) {
        let mut logged = false;
        loop {
            let config = self.channels.load().config().clone();
            let opened = Outbox::open(&config.relay.outbox, &config.state_dir).await;
            match opened {
                Ok(outbox) => {
                    tracing::info!(location = %outbox.location(), "outbox open");
                    if let Ok(mut error) = self.open_error.lock() {
                        *error = None;
                    }
                    let dispatcher = Dispatcher::start(
                        outbox,
                        self.channels.load_full(),
                        self.metrics.clone(),
                        self.shutdown.clone(),
                    )
                    .await;
                    self.dispatcher.store(Some(dispatcher));
                    return;
                }
                Err(error) => {
                    if !logged {
                        tracing::error!(%error, "cannot open the outbox; webhooks get 503 until it opens (retrying every 2 s)");
                        logged = true;
                    }
                    if let Ok(mut slot) = self.open_error.lock() {
                        *slot = Some(error.to_string());
                    }
                    self.metrics.set_snapshot(Snapshot {
                        outbox_up: false,
                        channels: Vec::new(),
                    });
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                () = self.shutdown.wait() => return,
            }
        }
    }

    /// Whether webhooks can be accepted (always, when no receiver is configured).
    pub fn is_ready(&self) -> bool {
        self.channels.load().config().receivers.is_empty() || self.dispatcher.load().is_some()
    }

    pub fn dispatcher(&self) -> Option<Arc<Dispatcher>> {
        self.dispatcher.load_full()
    }

    pub fn metrics(&self) -> &RelayMetrics {
        &self.metrics
    }

    /// Why the outbox is not open, if it is not.
    pub fn open_error(&self) -> Option<String> {
        self.open_error.lock().ok().and_then(|e| e.clone())
    }

    /// Follows a configuration reload.
    pub fn apply(self: &Arc<Self>, channels: Channels) {
        let channels = Arc::new(channels);
        let opening_needed = !channels.config().receivers.is_empty();
        self.metrics.init(channels.config());
        self.channels.store(Arc::clone(&channels));
        match self.dispatcher.load_full() {
            Some(dispatcher) => dispatcher.apply(channels),
            None if opening_needed && self.open_error().is_none() => {
                tokio::spawn(Arc::clone(self).open_outbox());
            }
            None => {}
        }
    }

    /// Commits `notification` for every channel of `receiver`; resolves once on disk.
    pub async fn accept(
        &self,
        config: &Config,
        receiver: &str,
        notification: &Notification,
        payload: String,
    ) -> Result<Accepted, AcceptError> {
        let Some(dispatcher) = self.dispatcher.load_full() else {
            return Err(AcceptError::Unavailable(
                self.open_error()
                    .unwrap_or_else(|| "still opening".to_owned()),
            ));
        };
        let (channels, escalates) = config
            .receivers
            .get(receiver)
            .map(|r| (r.channels.clone(), !r.escalate.is_empty()))
            .unwrap_or_default();
        let now = now_ms();
        let window = i64::try_from(config.relay.dedupe_window.as_millis()).unwrap_or(i64::MAX / 4);
        let accepted = dispatcher
            .outbox()
            .accept(NewNotification {
                receiver: receiver.to_owned(),
                dedupe_key: key::dedupe_key(receiver, notification),
                incident: key::incident_key(receiver, notification),
                payload,
                summary: outbox::summary(notification),
                channels: channels.clone(),
                received_at_ms: now,
                dedupe_since_ms: now - window,
                escalates,
                firing: notification.status == crate::alert::Status::Firing,
            })
            .await?;
        if matches!(accepted, Accepted::Stored { .. }) {
            dispatcher.wake(&channels);
        }
        Ok(accepted)
    }

    /// After shutdown was triggered: waits for in-flight sends to finish.
    pub async fn stopped(&self) {
        if let Some(dispatcher) = self.dispatcher.load_full() {
            dispatcher.stopped().await;
        }
    }
}
